# MixPro — the README's commands. Every target that runs code depends on `setup` (idempotent, fast when done).
PY := .venv/bin/python
PYTEST_ARGS ?=
FMNIST_METHODS := baseline transmix mixpro

.PHONY: setup demo test test-fast mutate benchmark benchmark-all gpu-check reproduce reproduce-downstream robustness-demo clean

setup:
	bash tools/setup.sh

demo: setup
	$(PY) tools/demo.py

# the layering check first (no module imports above its layer: docs/development.md), then the suite
test: setup
	$(PY) tools/check_layers.py
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) tools/check_layers.py
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# mutmut on MODULES (paths or folders, each against its paired tests) within BUDGET seconds in all; survivors per
# module and a score (docs/development.md, "Mutation testing"). Verdicts persist in work_dirs/mutate/; FRESH=1 drops them.
MODULES ?=
BUDGET ?= 1200
mutate: setup
	$(PY) tools/mutate.py $(MODULES) --budget $(BUDGET) $(if $(filter 1,$(FRESH)),--fresh)

benchmark: setup
	$(PY) tools/benchmark.py mix

benchmark-all: setup
	$(PY) tools/benchmark.py mix
	$(PY) tools/benchmark.py attention
	$(PY) tools/benchmark.py step
	$(PY) tools/benchmark.py throughput

# one prepared check on a CUDA machine (≤ 8 min on one H100/H200): every task trains a few iterations, the
# benchmarks run at B=128 bf16 → work_dirs/gpu_check/report.md (tools/gpu_check.sh: PYTHON, OUT, REPORT).
# No `setup` prerequisite: GPU machines are installed with MIXPRO_TORCH=system (README, "Clusters and GPUs").
gpu-check:
	bash tools/gpu_check.sh

# methods x seeds on Fashion-MNIST → docs/results.md + docs/results.png (resumes finished runs)
reproduce: setup
	$(PY) tools/reproduce.py

# baseline / TransMix / MixPro backbones (the reproduction's runs) and random init → Segmenter linear / mask (+MS) and
# Mask R-CNN on the composite set, 3 seeds → docs/results-downstream.md + .png (resumes finished runs; over an hour)
reproduce-downstream: setup
	$(PY) tools/reproduce.py --set downstream

# baseline / TransMix / MixPro Fashion-MNIST classifiers (trained once, ~5 min each), then occlusion, shuffle and
# FGSM/PGD (attacks on the first 2000 test images) → work_dirs/fmnist/robustness/
robustness-demo: setup
	@for m in $(FMNIST_METHODS); do \
	  test -f work_dirs/fmnist/$$m/epoch_20.pth || \
	    $(PY) tools/train.py configs/classification/tiny-vit_$${m}_1xb128-20e_fmnist.py \
	      --work-dir work_dirs/fmnist/$$m || exit 1; \
	done
	$(PY) tools/robustness.py configs/classification/tiny-vit_mixpro_1xb128-20e_fmnist.py \
	  work_dirs/fmnist/baseline/epoch_20.pth \
	  --compare work_dirs/fmnist/transmix/epoch_20.pth work_dirs/fmnist/mixpro/epoch_20.pth \
	  --attack-max-samples 2000 --num-workers 0 --out-dir work_dirs/fmnist/robustness

clean:
	rm -rf work_dirs .pytest_cache
