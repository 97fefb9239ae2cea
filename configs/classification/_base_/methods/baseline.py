# Baseline: Mixup 0.8 / CutMix 1.0, each on half of the batches, area labels with smoothing 0.1.
method = dict(mix=[dict(type="cutmix", prob=0.5, alpha=1.0), dict(type="mixup", prob=0.5, alpha=0.8)],
              label_policy=dict(type="AreaLabels"), smoothing=0.1)
