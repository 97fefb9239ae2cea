# MixPro with the area λ on its MaskMix batches and their hard-label CE kept (PAL ablation: area λ, hard CE;
# lam_source='area'), everything else as MixPro (docs/methods.md, "PAL").
_base_ = ["./mixpro.py"]
method = dict(label_policy=dict(lam_source="area"))
