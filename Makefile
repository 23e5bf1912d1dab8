# Every install step lives here: CI is a fresh clone (.ci/run -> make test).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv test test-slow test-macos run bench lint clean screenshots app test-app demo-model eval-demo \
	eval-img2img train-demo-style

venv: $(STAMP)

# torch==2.13.0 first: it is a CPU build on disk here; an unpinned torch pulls a multi-GB CUDA build.
# open_clip_torch is installed without its dependencies: we only read its CLIP BPE vocabulary file
# (it would otherwise pull a torchvision that does not import beside this torch).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,gui,coreml,api]'
	$(BIN)/python -m pip install -q --no-deps open_clip_torch==3.3.0
	touch $(STAMP)

test: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

# The house rules: import-linter contracts (pyproject.toml) and ruff; `make test` runs this first.
lint: venv
	$(BIN)/lint-imports
	$(BIN)/ruff check .

test-slow: venv
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m slow

test-macos: venv
	$(BIN)/python -m pytest -q -m macos

# The app bundle (PyInstaller): dist/lcm-desktop/ here, dist/LCM Desktop.app on macOS.
app: venv
	$(BIN)/python -m pip install -q 'pyinstaller>=6.10'
	mkdir -p build
	start=$$(date +%s); $(BIN)/pyinstaller --noconfirm --log-level WARN build.spec > build/app-build.log 2>&1 || \
		{ tail -30 build/app-build.log; exit 1; }; echo "app built in $$(( $$(date +%s) - start ))s"
	du -sh dist/lcm-desktop dist/lcm-convert

test-app:
	test -x dist/lcm-desktop/lcm-desktop || $(MAKE) app
	QT_QPA_PLATFORM=offscreen LCM_DESKTOP_HOME=$$(mktemp -d) dist/lcm-desktop/lcm-desktop gui --self-test

# Opens the app on the built-in model; with no screen (Linux without DISPLAY) it makes one image with the CLI.
run: venv
	@if [ "$$(uname)" = Darwin ] || [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then $(BIN)/lcm-desktop; else \
		echo "No display found: making one image with the CLI instead (the app needs a screen)."; \
		$(BIN)/lcm-desktop generate; fi

# Text-to-image, then the image-to-image live update (~15 min on a quiet 2-core machine; BENCH_ROUNDS=1 halves
# the image-to-image part when the machine is shared).  Each adds its measured table to docs/PERFORMANCE.md.
BENCH_ROUNDS ?= 2
bench: venv
	$(BIN)/python benchmarks/bench_engine.py --markdown docs/PERFORMANCE.md
	$(BIN)/python benchmarks/bench_img2img.py --rounds $(BENCH_ROUNDS) --markdown docs/PERFORMANCE.md
	$(BIN)/python benchmarks/bench_inpaint.py --rounds $(BENCH_ROUNDS) --markdown docs/PERFORMANCE.md
	$(BIN)/python benchmarks/bench_train.py  # one style-training step vs one UNet forward (docs/STYLES.md)

# The built-in demo model: retrain every stage from scratch with fixed seeds, export, evaluate
# (~2 h on an idle 2-core machine; DEMO_THREADS=1 when the machine is shared).
DEMO_THREADS ?= 2
demo-model: venv
	DEMO_THREADS=$(DEMO_THREADS) $(BIN)/python -m convert.demo_model all

# Evaluate the shipped LCM and teacher on 240 held-out captions; rewrites docs/DEMO_MODEL.md (~5 min).
eval-demo: venv
	$(BIN)/python -m convert.demo_model eval

# Image-to-image on the built-in model at strengths 0.3-1.0 and crude sketches; rewrites its section of
# docs/DEMO_MODEL.md (~3 min).
eval-img2img: venv
	$(BIN)/python -m convert.demo_model img2img

# The shipped style resources/styles/huge.safetensors: 200 rendered pictures, LCF (text-encoder LoRA, coarse-to-fine
# curriculum) on the built-in model, one torch thread (~8 min on an idle core; docs/STYLES.md).
train-demo-style: venv
	$(BIN)/python -m convert.demo_model.style_eval data work-style/huge
	LCM_DESKTOP_HOME=$(CURDIR)/work-style/home OMP_NUM_THREADS=1 $(BIN)/lcm-desktop train-style work-style/huge \
		--name huge --trigger huge --steps 1500 --batch 16 --rank 8 --lr 1e-3 --text-encoder --curriculum --force
	mkdir -p resources/styles
	cp work-style/home/data/styles/huge.safetensors resources/styles/huge.safetensors

clean:
	rm -rf $(VENV) build dist .pytest_cache

# Screenshots of the real app under a virtual X server (Debian packages installed here).
SCREENSHOT_PACKAGES := xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libxcb-image0 \
	libxcb-render-util0 libxcb-shape0 libxcb-randr0 libxcb-xinerama0 libxcb-xkb1 libegl1 libgl1 libfontconfig1 \
	libdbus-1-3 fonts-dejavu-core
screenshots: venv
	command -v Xvfb >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SCREENSHOT_PACKAGES))
	xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb OMP_NUM_THREADS=1 $(BIN)/python scripts/screenshots.py
