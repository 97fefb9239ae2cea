"""Classification pretraining: classifiers, the mmengine model wrapper, datasets, metrics and hooks.

Importing the package registers everything in mmengine's registries (configs say
``custom_imports = dict(imports=['classification'])``).
"""
from . import (backbone_compile, dali_loader, data_preprocessor, datasets, engine, hooks, in_memory,  # noqa: F401
               metrics, mix_classifier, models, runner)  # (registration)
