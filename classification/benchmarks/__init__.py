"""Measurements: micro (``tools/benchmark.py`` mix | attention | step | throughput and its command line), train
(``train``: our Runner end to end) with train_timm (timm's reference loop), common (timing, peak memory, the report),
synthetic_imagenet (a JPEG folder made on the machine), gpu_check (the steps of ``tools/gpu_check.sh``).
"""
