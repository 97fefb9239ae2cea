# MaskMix only (MixPro's image space without PAL): 50% MaskMix / 25% CutMix / 25% Mixup, area labels on every
# batch — the ablation of PAL. mask_size comes from the model base (model.mix_defaults).
method = dict(mix=[dict(type="maskmix", prob=0.5, alpha=1.0), dict(type="cutmix", prob=0.25, alpha=1.0),
                   dict(type="mixup", prob=0.25, alpha=0.8)],
              label_policy=dict(type="AreaLabels"), smoothing=0.1)
