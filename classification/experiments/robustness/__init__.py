"""Robustness of classifier checkpoints: suites (occlusion, patch shuffle, ImageNet-A/R/O; normalisation in the model),
attacks (FGSM, PGD), evaluate (one checkpoint → its results: :func:`.evaluate.evaluate_robustness`) and report
(``tools/robustness.py``: several checkpoints, JSON / Markdown / curves).
"""
