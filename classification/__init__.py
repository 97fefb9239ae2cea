"""Classification pretraining: classifiers, the mmengine model wrapper, datasets, metrics and hooks.

Importing the package registers everything in mmengine's registries (configs say
``custom_imports = dict(imports=['classification'])``).
"""
from .runtime import prefer_passive_omp_wait

prefer_passive_omp_wait()  # must run before torch loads OpenMP: see classification/runtime.py
from . import (backbone_compile, data_preprocessor, datasets, engine, hooks, in_memory,  # noqa: E402,F401
               metrics, mix_classifier, models)  # (registration)
