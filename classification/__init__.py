"""Classification pretraining and what the three tasks share, in layers (each imports only those below it; checked by
``tools/check_layers.py``):

- ``foundation``: errors, atomic writes, strict checkpoint loading, checkpoint sources, host settings;
- ``data``, ``models``, ``evaluation``: datasets and transforms; classifiers and the mmengine model; metrics;
- ``engine``: running a config (launch, lifecycle, config checks, runner, hooks, optimiser wrappers);
- ``transfer``: checkpoints to the downstream tasks, generated downstream sets;
- ``benchmarks``, ``experiments``: measurements; demo, robustness, reproduction.

Importing this package (or any sub-package) registers nothing: :mod:`classification.register_all` imports every module
that registers in mmengine's registries, and the configs name it (``custom_imports``).
"""
