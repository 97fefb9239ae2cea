# Extra, not the paper's table: Pascal Context with 59 classes (PascalContextDataset59), batch 8, window stride
# 480. Table 2 is the 60-class set with Segmenter's recipe (*_8xb2-80k_pascal-context-480x480.py).
# Segmenter, linear head (FCNHead without convs: a per-token linear classifier), DeiT-T backbone, pascal-context-59.
_base_ = ["./segmenter_pascal-context-59.py"]
model = dict(backbone=dict(embed_dims=192, num_heads=3, num_layers=12, patch_size=16),
             decode_head=dict(_delete_=True, type="FCNHead", in_channels=192, channels=192, num_convs=0,
                              dropout_ratio=0.0, concat_input=False, num_classes=59,
                              loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)))
