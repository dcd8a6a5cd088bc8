# Meld: `make demo` and `make test` are all a new user needs; each bootstraps .venv.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_PERSONS ?= 10000
DEMO_SEED ?= 42
DEMO_PROFILE ?= realistic
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export MELD_CONFIG ?= config/demo.yaml

.PHONY: install demo data materialize summary test lint ui mlflow-ui bench bench-ablation bench-ingestion bench-audit clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME):
	@mkdir -p $(DAGSTER_HOME)
	@test -s $(DAGSTER_HOME)/dagster.yaml || cp config/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

data: $(STAMP)
	$(BIN)/python -m linkage.demo data/demo --persons $(DEMO_PERSONS) --seed $(DEMO_SEED) \
		--profile $(DEMO_PROFILE)

# The job meld_pipeline: every asset and check except the on-demand labelling tool.
materialize: $(STAMP) | $(DAGSTER_HOME)
	$(BIN)/dagster job execute -m orchestration.definitions -j meld_pipeline \
		-c config/run_logging.yaml 2>&1 | grep -v -e SupersessionWarning -e "return callback"

summary: $(STAMP)
	@$(BIN)/meld summary

demo: data materialize summary

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

ui: $(STAMP) | $(DAGSTER_HOME)
	$(BIN)/dagster dev -w workspace.yaml

mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///data/demo/mlflow.db

bench: $(STAMP)
	$(BIN)/python benchmarks/accuracy.py

bench-ablation: $(STAMP)
	$(BIN)/python benchmarks/ablation.py

bench-ingestion: $(STAMP)
	$(BIN)/python benchmarks/ingestion.py

bench-audit: $(STAMP)
	$(BIN)/python benchmarks/audit.py

clean:
	rm -rf data/demo .dagster_home
