# Two commands do all setup on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# What Qt needs from the system: offscreen (tests), and a real X window (make run).
QT_OFFSCREEN_LIBS := libglib2.0-0 libgl1 libegl1 libfontconfig1 libxkbcommon0 libdbus-1-3
QT_X11_LIBS := libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
               libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-randr0 libxcb-xfixes0

.PHONY: run test lint bench headless system-deps-offscreen system-deps-x11 clean installer installer-check

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Install Qt's system libraries when root with apt; otherwise print the exact line to run.
define ensure_debs
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing system libraries:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  elif command -v dpkg >/dev/null 2>&1; then \
	    echo "Qt needs system libraries that are missing. Run:"; \
	    echo "  sudo apt-get install -y$$missing"; \
	  fi; \
	fi
endef

system-deps-offscreen:
	$(call ensure_debs,$(QT_OFFSCREEN_LIBS))

system-deps-x11: system-deps-offscreen
	$(call ensure_debs,$(QT_X11_LIBS))

run: $(STAMP) system-deps-x11
	$(BIN)/trading-console

headless: $(STAMP)
	$(BIN)/trading-console --headless

# Qt tests run in processes of their own (see tests/conftest.py for why), two at a time: they
# mostly wait on the engine's clock, so two workers take ~85 s where one took ~230 s.
test: $(STAMP) system-deps-offscreen
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m "not gui and not slow" -n 2
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m "gui and not slow" -n 2

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP) system-deps-offscreen
	$(BIN)/python bench/engine_throughput.py
	$(BIN)/python bench/risk_check.py
	$(BIN)/python bench/emergency_stop.py

# The PyInstaller bundle (build_installer.spec). It is built on a host with the X11 libraries
# installed so that they are bundled and the window opens on a machine without them.
INSTALLER_STAMP := $(VENV)/.installer-stamp
BUNDLE_DIR := dist/trading-console
BUNDLE_EXE := $(BUNDLE_DIR)/trading-console

$(INSTALLER_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[installer]'
	touch $(INSTALLER_STAMP)

installer: $(INSTALLER_STAMP) system-deps-x11
	$(BIN)/pyinstaller --noconfirm --log-level WARN build_installer.spec
	cp packaging/install-desktop.sh $(BUNDLE_DIR)/
	@echo "bundle: $(BUNDLE_DIR), $$(du -sm $(BUNDLE_DIR) | cut -f1) MB ($$(du -sh $(BUNDLE_DIR) | cut -f1))"

# Runs the built binary offscreen in a throw-away home; fails on a non-zero exit or a missing marker.
installer-check: $(INSTALLER_STAMP) system-deps-offscreen
	@test -x $(BUNDLE_EXE) || { echo "$(BUNDLE_EXE) is missing: run make installer first"; exit 1; }
	$(BIN)/python packaging/check_bundle.py $(BUNDLE_DIR)
	$(BUNDLE_EXE) --version
	@home=$$(mktemp -d); \
	out=$$(TRADING_CONSOLE_HOME=$$home QT_QPA_PLATFORM=offscreen timeout 120 $(BUNDLE_EXE) --smoke-test 2>&1); rc=$$?; \
	rm -rf "$$home"; echo "$$out"; \
	if [ $$rc -ne 0 ]; then echo "installer check FAILED: exit code $$rc"; exit 1; fi; \
	if ! echo "$$out" | grep -qx 'SMOKE-TEST OK'; then echo "installer check FAILED: no SMOKE-TEST OK line"; exit 1; fi; \
	echo "installer check passed"

clean:
	rm -rf build dist .pytest_cache
