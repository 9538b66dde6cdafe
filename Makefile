# Set-up and everyday commands. `make run` and `make test` each create the virtual
# environment they need, so on a fresh machine either is the only command to type.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml packaging/constraints.txt | cksum | cut -d' ' -f1)
BUNDLE_STAMP := $(VENV)/.bundle-$(shell cat pyproject.toml packaging/constraints.txt | cksum | cut -d' ' -f1)
export QT_QPA_PLATFORM ?= $(if $(DISPLAY)$(WAYLAND_DISPLAY),,offscreen)

.PHONY: venv run test lint bench bundle bundle-test clean

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

## Everything CI checks: lint, format, types, the import contract, then the tests.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# -X dev: asyncio debug mode, ResourceWarnings shown, faulthandler on (see pyproject).
test: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -X dev -m pytest -q

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
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
