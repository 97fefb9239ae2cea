"""Classification pretraining: classifiers, the mmengine model wrapper, datasets, metrics and hooks.

Importing the package registers everything in mmengine's registries (configs say
``custom_imports = dict(imports=['classification'])``).
"""
from . import datasets, engine, hooks, metrics, mix_classifier, models  # noqa: F401  (registration)
