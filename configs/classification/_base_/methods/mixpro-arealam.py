# MixPro with the area λ on its MaskMix batches and their hard-label CE kept (PAL ablation: area λ, hard CE;
# lam_source='area'), everything else as MixPro (docs/methods.md, "PAL").
method = dict(mix=[dict(type="maskmix", prob=0.5, alpha=1.0), dict(type="cutmix", prob=0.25, alpha=1.0),
                   dict(type="mixup", prob=0.25, alpha=0.8)],
              label_policy=dict(type="PALLabels", detach_factor=False, keep_smoothing=False, lam_source="area"),
              smoothing=0.1)
