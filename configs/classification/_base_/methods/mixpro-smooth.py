# MixPro with smoothed soft-target CE on its MaskMix batches (PAL ablation: PAL λ, smoothed CE; keep_smoothing=True),
# everything else as MixPro (docs/methods.md, "PAL").
_base_ = ["./mixpro.py"]
method = dict(label_policy=dict(keep_smoothing=True))
