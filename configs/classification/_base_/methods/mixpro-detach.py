# MixPro with the gradient through PAL's α stopped (PAL ablation: detach_factor=True), everything else as MixPro
# (docs/methods.md, "PAL").
method = dict(mix=[dict(type="maskmix", prob=0.5, alpha=1.0), dict(type="cutmix", prob=0.25, alpha=1.0),
                   dict(type="mixup", prob=0.25, alpha=0.8)],
              label_policy=dict(type="PALLabels", detach_factor=True, keep_smoothing=False), smoothing=0.1)
