#!/usr/bin/env python
"""Micro-benchmarks (warm-up, then the median of N runs; compared paths timed round-robin).

    python tools/benchmark.py mix        [--batch 128 --size 224 --repeats 20]
    python tools/benchmark.py attention  [--model deit_small --batch 32|128 --repeats 10 --amp bf16 --no-grad]
    python tools/benchmark.py step       [--models deit_tiny deit_small --batch 32|128 --repeats 10 --amp bf16]
    python tools/benchmark.py throughput [--model deit_small --batch 32|128 --repeats 10 --amp bf16]
    python tools/benchmark.py train      [--images N --iters 128 --workers W ... --compile --quick]

What each subcommand measures: :mod:`classification.benchmarks.micro`.
"""
from classification.benchmarks.micro import main

if __name__ == "__main__":
    main()
