"""mixpro_core: framework-free MixPro and the mixing methods it is compared to (pure torch).

Image space (``mixing``): :func:`mixup`, :func:`cutmix`, :func:`maskmix`, :class:`MixSchedule` → :class:`MixBatch`.
Attention (``attention``): :func:`forward_with_attention` — logits and the last block's CLS→patch attention.
Label space (``labels``): area / TransMix / PAL λ, the losses, and the :class:`LabelPolicy` objects.
Model-aware image mixing (``rmix``): :func:`rmix` (R-Mix: input-gradient saliency, random threshold), :class:`RMixer`;
(``rlmix``) :class:`RLMixer` (RL-Mix: the threshold chosen by a PPO policy; optional extra ``.[rlmix]``).
Token space (``tokenmixup``): TokenMixup's :class:`HorizontalTokenMixup` (HTM) and :class:`VerticalTokenMixup` (VTM),
attached per forward by a :class:`TokenMixup` controller (:func:`build_token_mixup`).
"""
from .attention import (cls_attention_from_qkv, cls_row_attention, forward_with_attention, has_cls_attention,
                        register_attention_forward)
from .labels import (AreaLabels, LabelPolicy, PALLabels, TransMixLabels, area_lambda, attention_lambda,
                     mixed_cross_entropy, mixed_targets, pal_lambda, progressive_factor, smooth_one_hot,
                     soft_target_cross_entropy, transmix_lambda)
from .mixing import (MixBatch, MixSchedule, cutmix, maskmix, maskmix_masks, mixup, no_mix, random_partner,
                     sample_beta, token_mask_from_pixels)
from .rlmix import RLMixer
from .rmix import RMixer, input_saliency, region_fractions, rmix, rmix_from_cells
from .tokenmixup import (HorizontalTokenMixup, TokenMixup, TokenMixupContext, VerticalTokenMixup, build_token_mixup,
                         horizontal_token_mixup)

__all__ = [
    "MixBatch", "MixSchedule", "mixup", "cutmix", "maskmix", "maskmix_masks", "no_mix", "random_partner", "sample_beta",
    "token_mask_from_pixels", "forward_with_attention", "has_cls_attention", "register_attention_forward",
    "cls_row_attention", "cls_attention_from_qkv", "smooth_one_hot", "mixed_targets", "attention_lambda",
    "progressive_factor", "area_lambda", "transmix_lambda", "pal_lambda", "soft_target_cross_entropy",
    "mixed_cross_entropy", "LabelPolicy", "AreaLabels", "TransMixLabels", "PALLabels",
    "rmix", "rmix_from_cells", "input_saliency", "region_fractions", "RMixer", "RLMixer",
    "HorizontalTokenMixup", "VerticalTokenMixup", "TokenMixup", "TokenMixupContext", "build_token_mixup",
    "horizontal_token_mixup",
]
