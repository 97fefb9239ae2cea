# Baseline: Mixup 0.8 / CutMix 1.0 with switch probability 0.5, area labels with smoothing 0.1.
method = dict(mix=dict(maskmix_prob=0.0, switch_prob=0.5, mixup_alpha=0.8, cutmix_alpha=1.0),
              label_policy=dict(type="AreaLabels"), smoothing=0.1)
