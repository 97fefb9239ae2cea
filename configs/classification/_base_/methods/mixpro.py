# MixPro: 50% MaskMix (α 1, cells of mask_size pixels) / 25% Mixup / 25% CutMix, Progressive Attention Labeling ON
# (the official configs shipped with it off by mistake). PAL as in the official code: α keeps its gradient,
# hard-label CE on MaskMix batches. mask_size is set by each model base (a multiple of its token stride).
method = dict(mix=dict(maskmix_prob=0.5, switch_prob=0.5, mixup_alpha=0.8, cutmix_alpha=1.0, maskmix_alpha=1.0),
              label_policy=dict(type="PALLabels", detach_factor=False, keep_smoothing=False), smoothing=0.1)
