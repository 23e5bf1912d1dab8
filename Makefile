# Every install step lives here: CI is a fresh clone (.ci/run -> make test).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv test test-slow run bench lint clean

venv: $(STAMP)

# torch==2.13.0 first: it is a CPU build on disk here; an unpinned torch pulls a multi-GB CUDA build.
# open_clip_torch is installed without its dependencies: we only read its CLIP BPE vocabulary file
# (it would otherwise pull a torchvision that does not import beside this torch).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,gui,coreml]'
	$(BIN)/python -m pip install -q --no-deps open_clip_torch==3.3.0
	touch $(STAMP)

test: venv
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q
	$(BIN)/lint-imports

test-slow: venv
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m slow

run: venv
	$(BIN)/lcm-desktop generate "a large red circle on a blue background, top left"

bench: venv
	$(BIN)/python benchmarks/bench_engine.py --markdown docs/PERFORMANCE.md

clean:
	rm -rf $(VENV) build dist .pytest_cache
