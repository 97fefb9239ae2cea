"""Classification pretraining: classifiers, the mmengine model wrapper, datasets, metrics and hooks.

Importing the package registers everything in mmengine's registries (configs say
``custom_imports = dict(imports=['classification'])``).
"""
from . import engine, models  # noqa: F401  (registration: the atomic_local backend; the classifiers)
from .data import cifar, dali, fashion_mnist, imagenet, in_memory, preprocessor, sampler, transforms  # noqa: F401
from .engine import compile, hooks, optim_wrapper, runner  # noqa: F401
from .models import metrics, mix_classifier  # noqa: F401
