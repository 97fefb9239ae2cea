"""mixpro_core: framework-free MixPro and the mixing methods it is compared to (pure torch; docs/methods.md).

A training method is one :class:`Method` (``method``: the contract, :data:`METHODS`, how to add one):
``method(backbone, images, labels, generator) -> MethodResult(loss, lam, stats)``. :class:`ScheduleMethod`
('schedule') runs every image-mixing method below with a label policy and TokenMixup; ``tlalign`` (:class:`TLAlign`),
``smmix`` (:class:`SMMix`), ``tokenmix`` (:class:`TokenMix`, with the teacher's label maps as per-sample inputs,
``Method.EXTRAS``), ``tokenmix-area`` (:class:`TokenMixArea`, no teacher) and ``mergemix`` (:class:`MergeMix`) are
methods of their own files. A new method is one file, imported here.

Image space (``mixing``): :func:`mixup`, :func:`cutmix`, :func:`maskmix`, :func:`resizemix` → :class:`MixBatch`;
model-aware: :func:`rmix` (R-Mix, ``rmix``) and :class:`RLMixer` (RL-Mix, ``rlmix``; optional extra ``.[rlmix]``).
Every mixer is registered in :data:`MIXERS` and called ``mixer(images, labels, model, generator) -> MixBatch``;
:func:`build_schedule` turns a list of ``dict(type=name, prob=p, **options)`` into a :class:`MixSchedule` that picks
one per batch (``registry``, ``schedule``). Attention (``attention``): :func:`forward_with_attention` — logits and the
last block's CLS→patch attention. Label space (``labels``): area / TransMix / PAL λ, the losses, and the
:class:`LabelPolicy` objects (:data:`LABEL_POLICIES`). Token space (``tokenmixup``): TokenMixup's
:class:`HorizontalTokenMixup` (HTM) and :class:`VerticalTokenMixup` (VTM), attached per forward by a
:class:`TokenMixup` controller (:func:`build_token_mixup`).
"""
from .attention import (attention_key, cls_attention_from_qkv, cls_row_attention, forward_with_attention,
                        has_cls_attention, received_attention_from_qkv, token_stride)
from .labels import (POLICY_STATS, AreaLabels, LabelPolicy, LabelResult, PALLabels, TransMixLabels, area_lambda,
                     attention_lambda, build_label_policy, check_class_count, mixed_cross_entropy, mixed_targets,
                     pal_factor_and_lambda, pal_lambda, progressive_factor, smooth_one_hot, soft_target_cross_entropy,
                     transmix_lambda)
from .mixing import (MixBatch, cutmix, maskmix, maskmix_masks, mixup, no_mix, random_partner, resizemix, sample_beta,
                     token_mask_from_pixels)
from .registry import (ATTENTION_FORWARDS, LABEL_POLICIES, METHODS, MIXERS, TOKEN_MIXERS, Registry,
                       call_with_options, check_options)
from .rlmix import RLMixer
from .rmix import input_saliency, region_fractions, rmix, rmix_from_cells
from .schedule import Mixer, MixSchedule, build_mixer, build_schedule, check_mix_defaults
from .tokenmixup import (HorizontalTokenMixup, TokenMixup, TokenMixupContext, TokenMixupResult, VerticalTokenMixup,
                         build_token_mixup, horizontal_token_mixup)
from .method import Method, MethodResult, ScheduleMethod, build_method, kl_to_soft_target
from .smmix import RECEIVED_ATTENTION_FORWARDS, SMMix
from .tlalign import TLAlign, forward_with_token_labels, token_grid_cutmix
from .tokenmix import TokenMix, TokenMixArea
from .mergemix import MergeMix

register_mixer = MIXERS.register
"""Decorator: ``@register_mixer('name')`` on a mixer function or class (see :mod:`mixpro_core.schedule`)."""

__all__ = [
    "MixBatch", "mixup", "cutmix", "maskmix", "resizemix", "maskmix_masks", "no_mix", "random_partner",
    "sample_beta", "token_mask_from_pixels",
    "Registry", "MIXERS", "LABEL_POLICIES", "TOKEN_MIXERS", "register_mixer", "call_with_options", "check_options",
    "Mixer", "MixSchedule", "build_mixer", "build_schedule", "check_mix_defaults",
    "forward_with_attention", "has_cls_attention", "token_stride", "ATTENTION_FORWARDS", "attention_key", "cls_row_attention",
    "cls_attention_from_qkv", "received_attention_from_qkv", "smooth_one_hot", "mixed_targets", "attention_lambda", "progressive_factor",
    "area_lambda", "transmix_lambda", "pal_lambda", "pal_factor_and_lambda", "check_class_count", "soft_target_cross_entropy", "mixed_cross_entropy",
    "LabelPolicy", "LabelResult", "POLICY_STATS", "AreaLabels", "TransMixLabels", "PALLabels", "build_label_policy",
    "rmix", "rmix_from_cells", "input_saliency", "region_fractions", "RLMixer",
    "HorizontalTokenMixup", "VerticalTokenMixup", "TokenMixup", "TokenMixupContext", "TokenMixupResult",
    "build_token_mixup", "horizontal_token_mixup",
    "METHODS", "Method", "MethodResult", "ScheduleMethod", "build_method", "kl_to_soft_target",
    "TLAlign", "token_grid_cutmix", "forward_with_token_labels", "SMMix", "RECEIVED_ATTENTION_FORWARDS",
    "TokenMix", "TokenMixArea", "MergeMix",
]
