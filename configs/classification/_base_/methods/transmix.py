# TransMix: the baseline's Mixup/CutMix; on batches with a token mask (CutMix) λ = (λ_area + λ_attn)/2.
method = dict(mix=[dict(type="cutmix", prob=0.5, alpha=1.0), dict(type="mixup", prob=0.5, alpha=0.8)],
              label_policy=dict(type="TransMixLabels"), smoothing=0.1)
