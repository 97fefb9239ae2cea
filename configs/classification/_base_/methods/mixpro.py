# MixPro: 50% MaskMix (α 1, cells of mask_size pixels) / 25% CutMix / 25% Mixup, Progressive Attention Labeling ON
# (the official configs shipped with it off by mistake). PAL as in the official code: α keeps its gradient,
# hard-label CE on MaskMix batches. mask_size is set by each model base (model.mix_defaults, a multiple of its token
# stride).
method = dict(mix=[dict(type="maskmix", prob=0.5, alpha=1.0), dict(type="cutmix", prob=0.25, alpha=1.0),
                   dict(type="mixup", prob=0.25, alpha=0.8)],
              label_policy=dict(type="PALLabels", detach_factor=False, keep_smoothing=False), smoothing=0.1)
