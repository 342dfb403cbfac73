# mefgan-tf: every user-facing task is one make target.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test demo patches train export bench clean

install: $(STAMP)

$(STAMP): setup.py mefgan_tf/VERSION
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) tests

demo: install
	$(BIN)/mefgan demo --out demo

patches: install
	$(BIN)/mefgan patches $(PATCHES_ARGS)

train: install
	$(BIN)/mefgan train $(TRAIN_ARGS)

export: install
	$(BIN)/mefgan export --out export/mefgan/1 $(EXPORT_ARGS)

bench: install
	$(BIN)/python -m benchmarks.run --out bench/report.json

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache demo export bench/*.json
