"""Experiments over trained models: demo (``tools/demo.py``: pretrain → convert → Segmenter → Mask R-CNN),
visualize (MaskMix grids), stages (process-parallel stages of the demo), robustness (suites, attacks, evaluation,
report) and reproduction (``tools/reproduce.py`` sets and ``tools/paper_tables.py``).
"""
