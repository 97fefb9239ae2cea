# Each method base defines `method`; a config applies it with model = dict(mix=..., label_policy=..., smoothing=...).
# No mixing: plain label-smoothed cross-entropy.
method = dict(mix=dict(maskmix_prob=0.0, mixup_alpha=0.0, cutmix_alpha=0.0),
              label_policy=dict(type="AreaLabels"), smoothing=0.1)
