# TransMix: the baseline's Mixup/CutMix; on CutMix batches λ = (λ_area + λ_attn)/2.
method = dict(mix=dict(maskmix_prob=0.0, switch_prob=0.5, mixup_alpha=0.8, cutmix_alpha=1.0),
              label_policy=dict(type="TransMixLabels"), smoothing=0.1)
