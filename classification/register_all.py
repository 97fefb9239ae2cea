"""Imports every module of ``classification`` that registers something in mmengine's registries — and only those:
the classification configs name it (``custom_imports = dict(imports=['classification.register_all'])``), as do
scripts that build from a registry without a config. Importing any other module of the package registers only what
that module defines.
"""
from classification.data import (cifar, dali, fashion_mnist, imagenet, in_memory, label_maps,  # noqa: F401
                                 preprocessor, sampler, transforms)
from classification.engine import compile_hook, hooks, optim_wrapper, preemption, runner  # noqa: F401
from classification.evaluation import accuracy  # noqa: F401
from classification.foundation import atomic_backend  # noqa: F401  (the atomic_local file backend)
from classification.models import ca_swin, cct, mix_classifier, msmlp, pvt, vits  # noqa: F401
