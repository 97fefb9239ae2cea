# Segmenter, linear head (FCNHead without convs: a per-token linear classifier, as Segmenter's DecoderLinear, no
# dropout), DeiT-T backbone, Pascal Context (60 classes).
_base_ = ["./segmenter_pascal-context.py"]
model = dict(backbone=dict(embed_dims=192, num_heads=3, num_layers=12, patch_size=16),
             decode_head=dict(_delete_=True, type="FCNHead", in_channels=192, channels=192, num_convs=0,
                              dropout_ratio=0.0, concat_input=False, num_classes=60,
                              loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)))
