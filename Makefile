# The README's commands. Every target creates .venv (with a Python >= 3.12 found by
# scripts/find-python, or PYTHON=...) and installs the project into it when needed.
VENV ?= .venv
PYTHON ?=
export PYTHON
BIN := $(VENV)/bin
STAMP := $(VENV)/.flowtrace-installed

.PHONY: test demo screenshots bench clean

$(STAMP): pyproject.toml $(wildcard setup.py)
	@py=$$(scripts/find-python) || exit 1; \
	if [ ! -x $(BIN)/python ]; then echo "creating $(VENV) with $$py"; "$$py" -m venv $(VENV) || exit 1; fi
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/flowtrace run -o demo.ftr examples/shop.py
	$(BIN)/flowtrace-tui demo.ftr

screenshots: $(STAMP)
	$(BIN)/python scripts/make_screenshots.py

# Each benchmark prints its figures side by side, measured in one run (see README, Performance).
# VizTracer rows appear only when its command is found (VIZTRACER=path, or on PATH; it is not
# a dependency: install it in a separate venv).
bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py --repeat 3
	$(BIN)/python benchmarks/e2e.py --repeat 3 --scale 3 $(if $(VIZTRACER),--viztracer $(VIZTRACER))
	$(BIN)/python benchmarks/tui_bench.py
	$(BIN)/python benchmarks/tui_bench.py --real
	$(BIN)/python benchmarks/live_latency.py
	$(BIN)/python benchmarks/generators.py --n 1000000 --repeat 3
	$(BIN)/python benchmarks/real_suite.py --repeat 3

# Everything the targets above and the build leave behind: every venv (.venv, .venv-3.13, ...),
# the compiled C recorder, build directories, caches and the demo's session.
clean:
	rm -rf $(VENV) .venv .venv-* build dist *.egg-info .pytest_cache demo.ftr \
		flowtrace/_crecorder*.so
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
