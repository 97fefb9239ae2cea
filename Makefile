# MixPro — the README's commands. Every target that runs code depends on `setup` (idempotent, fast when done).
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast benchmark clean

setup:
	bash tools/setup.sh

demo: setup
	$(PY) tools/demo.py

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

benchmark: setup
	$(PY) tools/benchmark.py mix

clean:
	rm -rf work_dirs .pytest_cache
