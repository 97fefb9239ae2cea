# MaskMix only (MixPro's image space without PAL): area labels on every batch — the ablation of PAL.
method = dict(mix=dict(maskmix_prob=0.5, switch_prob=0.5, mixup_alpha=0.8, cutmix_alpha=1.0, maskmix_alpha=1.0),
              label_policy=dict(type="AreaLabels"), smoothing=0.1)
