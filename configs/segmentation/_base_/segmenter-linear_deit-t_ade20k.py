# Extra, not the paper's table: Table 2 is Pascal Context, 60 classes (*_8xb2-80k_pascal-context-480x480.py).
# Segmenter, linear head (FCNHead without convs: a per-token linear classifier), DeiT-T backbone, ade20k.
_base_ = ["./segmenter_ade20k.py"]
model = dict(backbone=dict(embed_dims=192, num_heads=3, num_layers=12, patch_size=16),
             decode_head=dict(_delete_=True, type="FCNHead", in_channels=192, channels=192, num_convs=0,
                              dropout_ratio=0.0, concat_input=False, num_classes=150,
                              loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)))
