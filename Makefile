# mefgan-tf: every user-facing task is one make target.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BASE_STAMP := $(VENV)/.installed-base
PYTEST_ARGS ?=
# Test files run on this many processes (pytest-xdist; a file's tests stay together, sharing its fixtures),
# longest first (tests/conftest.py orders them; xdist would otherwise reorder by test count).
TEST_WORKERS ?= 2
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test test-fast demo patches train export serve bench browser-deps clean

install: $(STAMP)

# The base install (what `make demo` needs), then the test and JAX extras on top (what `make test` needs).
# An editable install of a mapped package (data_prep/ installs as mefgan_tf.data_prep) makes setuptools
# print an information-only banner ("Editable installation."); it concerns no file here, so it is filtered.
EDITABLE := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install --quiet -e
$(BASE_STAMP): setup.py pyproject.toml mefgan_tf/VERSION
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip "setuptools>=77"
	$(EDITABLE) .
	touch $(BASE_STAMP)

$(STAMP): $(BASE_STAMP)
	$(EDITABLE) ".[test,jax]"
	touch $(STAMP)

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS) tests

# The suite without the tests marked slow (training runs, JAX, LiteRT variants; each over 20 s): for while you work.
test-fast: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m 'not slow' $(PYTEST_ARGS) tests

demo: $(BASE_STAMP)
	$(BIN)/mefgan demo --out demo --overwrite

patches: install
	$(BIN)/mefgan patches --overwrite $(PATCHES_ARGS)

train: install
	$(BIN)/mefgan train $(TRAIN_ARGS)

export: install
	$(BIN)/mefgan export --out export/mefgan/1 $(EXPORT_ARGS)

serve: install
	$(BIN)/mefgan serve $(SERVE_ARGS)

bench: install
	$(BIN)/python -m benchmarks.run --out bench/report.json

# Headless Chromium and its driver from Debian, for the page's browser test (skipped without them).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
		echo "browser-deps: $$(/usr/bin/chromium --version 2>/dev/null) and chromedriver already installed"; \
	else \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null && \
		echo "browser-deps: installed $$(/usr/bin/chromium --version 2>/dev/null)"; \
	fi

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache demo export bench/*.json
