# MixPro with the gradient through PAL's α stopped (PAL ablation: detach_factor=True), everything else as MixPro
# (docs/methods.md, "PAL").
_base_ = ["./mixpro.py"]
method = dict(label_policy=dict(detach_factor=True))
