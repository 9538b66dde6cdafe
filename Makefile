# Set-up and everyday commands. `make run` and `make test` each create the virtual
# environment they need, so on a fresh machine either is the only command to type.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml packaging/constraints.txt | cksum | cut -d' ' -f1)
BUNDLE_STAMP := $(VENV)/.bundle-$(shell cat pyproject.toml packaging/constraints.txt | cksum | cut -d' ' -f1)
export QT_QPA_PLATFORM ?= $(if $(DISPLAY)$(WAYLAND_DISPLAY),,offscreen)

# pytest on two workers (pytest-xdist); tests in one xdist_group run on the same worker, one
# after another. The workers run `python -X dev` like the controller (asyncio debug mode,
# ResourceWarnings shown, faulthandler on; see pyproject); the processes the tests start do
# not (PYTHONDEVMODE would reach them too).
WORKERS ?= 2
xdist = --tx '$(WORKERS)*popen//python=$(abspath $(1))/python -X dev' --dist loadgroup
PYTEST := QT_QPA_PLATFORM=offscreen $(BIN)/python -X dev -m pytest -q $(call xdist,$(BIN))
# `make check`: not the slow, packaging or bundle tests, nor those recorded as slow.
FAST := -m 'not slow and not packaging and not bundle' --fast

.PHONY: venv run check test test-busy test-pythons durations lint bench bundle bundle-test clean

venv: $(STAMP)

$(STAMP): pyproject.toml packaging/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c packaging/constraints.txt -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## The main job: the desktop app, or a short headless recipe where there is no display.
run: venv
	$(BIN)/python -m desktop_app.launch

## Format, lint, types, the import contracts.
lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## The fast loop (under 2 minutes on 2 cores): lint, then the tests recorded as fast.
check: lint
	$(PYTEST) $(FAST)

## What CI runs: lint, then the whole suite (but the slow reliability runs) on two workers.
test: lint
	$(PYTEST)

## `make test`'s suite while a bounded background load keeps every core busy (BUSY_S
## seconds at most): the timing bounds of the tests must hold on a loaded machine.
BUSY_S ?= 1500
test-busy: venv
	$(BIN)/python tests/busy.py --seconds $(BUSY_S) -- "$(PYTEST)"

## Python 3.12 and 3.13 (the CPU torch wheel on disk is for 3.11): the torch-free part of
## the suite, the journal, the CLI commands that read run folders and the app offscreen, in
## .venv-3.12 and .venv-3.13. pip installs the project with --no-deps and its other
## dependencies explicitly, under a constraint no torch satisfies; tests that need torch skip.
PYTHONS ?= 3.12 3.13
TORCH_FREE_TESTS ?= tests/test_journal.py tests/test_summaries.py tests/test_follower.py tests/test_config.py \
	tests/test_control.py tests/test_retry.py tests/test_supervision.py tests/test_cli.py \
	tests/test_settings.py tests/gui
# pyenv's interpreter for a version, else the one on the PATH.
python_for = $(firstword $(wildcard $(HOME)/.pyenv/versions/$(1).*/bin/python$(1)) \
	$(shell command -v python$(1)) python$(1))

test-pythons: $(addprefix test-py,$(PYTHONS))

test-py%: .venv-%/.installed
	QT_QPA_PLATFORM=offscreen .venv-$*/bin/python -X dev -m pytest -q -p no:cacheprovider \
		$(call xdist,.venv-$*/bin) $(TORCH_FREE_TESTS)

.PRECIOUS: .venv-%/.installed
.venv-%/.installed: pyproject.toml packaging/constraints.txt packaging/torch_free_requirements.py
	test -x .venv-$*/bin/python || $(call python_for,$*) -m venv .venv-$*
	.venv-$*/bin/python packaging/torch_free_requirements.py > .venv-$*/requirements.txt
	.venv-$*/bin/python -m pip install --quiet -c packaging/constraints.txt \
		-c packaging/no-torch.txt -r .venv-$*/requirements.txt
	.venv-$*/bin/python -m pip install --quiet --no-deps -c packaging/no-torch.txt -e .
	touch $@

## Record each test's duration in tests/durations.json (what `make check --fast` reads).
durations: venv
	$(PYTEST) --record-durations tests/durations.json

bench: venv
	$(BIN)/python -m bench

## The PyInstaller one-folder bundle: dist/traindesk/traindesk is the desktop app, and
## `dist/traindesk/traindesk trainer ...` the headless trainer (packaging/traindesk.spec).
bundle: $(BUNDLE_STAMP)
	$(BIN)/python -m PyInstaller --noconfirm --log-level WARN \
		--distpath dist --workpath build packaging/traindesk.spec
	du -sh dist/traindesk

# PyInstaller (the `bundle` extra), on top of what `make venv` installs.
$(BUNDLE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c packaging/constraints.txt -e '.[test,bundle]'
	rm -f $(VENV)/.bundle-*
	touch $(BUNDLE_STAMP)

## Build the bundle, then run its smoke tests (tests/test_bundle.py) against it.
bundle-test: bundle
	TRAINDESK_BUNDLE=$(CURDIR)/dist/traindesk/traindesk QT_QPA_PLATFORM=offscreen \
		$(BIN)/python -m pytest -q -m bundle tests/test_bundle.py

clean:
	rm -rf $(VENV) .venv-3.* build dist .pytest_cache .mypy_cache .ruff_cache
