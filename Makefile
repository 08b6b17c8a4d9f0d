# painmeta: reproducible neuroimaging meta-analysis of CIPN and cancer pain.
# `make help` lists the targets. Parameters: DATASET (a folder name under data/raw/:
# cipn, cancer_pain, nidm_pain, or yours) and PARAMS (a JSON object of Papermill
# parameters for every stage, e.g. PARAMS='{"config_overrides": {"ale": {"seed": 7}}}').
# Each stage is a real file target: it reruns only when its notebook, the code in
# src/, the dataset's raw files, the PARAMS or an upstream stage changed.

SHELL := /bin/bash
.DEFAULT_GOAL := help

DATASET ?= cipn
PARAMS  ?=

# DATASET is a name, never a path or a command: it becomes folder names (and rm -rf
# arguments in `clean`). Check its raw text ($(value ...): nothing in it is expanded or
# handed to a shell) before any rule uses it: 1-64 of [A-Za-z0-9_-], not starting with _ or -.
_NAME_CHARS := a b c d e f g h i j k l m n o p q r s t u v w x y z A B C D E F G H I J K L M N O P Q R S T U V W X Y Z 0 1 2 3 4 5 6 7 8 9 _ -
_strip_chars = $(if $(2),$(call _strip_chars,$(subst $(firstword $(2)),,$(1)),$(wordlist 2,$(words $(2)),$(2))),$(1))
_DATASET_RAW := $(value DATASET)
ifneq ($(words $(_DATASET_RAW)),1)
$(error DATASET='$(_DATASET_RAW)' is not a dataset name: give one name, e.g. make all DATASET=cipn (datasets are folders data/raw/NAME/))
endif
ifneq ($(call _strip_chars,$(_DATASET_RAW),$(_NAME_CHARS)),)
$(error DATASET='$(_DATASET_RAW)' is not a dataset name: use only letters, digits, '_' and '-' (a name under data/raw/, never a path))
endif
ifneq ($(filter _% -%,$(_DATASET_RAW)),)
$(error DATASET='$(_DATASET_RAW)' is not a dataset name: it must start with a letter or digit)
endif
_space_chars = $(if $(2),$(call _space_chars,$(subst $(firstword $(2)),$(firstword $(2)) ,$(1)),$(wordlist 2,$(words $(2)),$(2))),$(1))
ifneq ($(word 65,$(call _space_chars,$(_DATASET_RAW),$(_NAME_CHARS))),)
$(error DATASET='$(_DATASET_RAW)' is too long: at most 64 characters)
endif

PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.painmeta-installed
# PAINMETA_WORK / PAINMETA_RAW move what runs write / where datasets live (as in painmeta.paths).
WORK    := $(if $(PAINMETA_WORK),$(PAINMETA_WORK)/,)
RAW_DIR := $(if $(PAINMETA_RAW),$(PAINMETA_RAW),data/raw)
OUT     := $(WORK)outputs/$(DATASET)
NBOUT   := $(OUT)/notebooks
REPORT  := $(OUT)/report
SRC     := $(shell find src -type f \( -name '*.py' -o -name '*.j2' -o -name '*.csv' \) 2>/dev/null)
RAW     := $(wildcard $(RAW_DIR)/$(DATASET)/* $(RAW_DIR)/$(DATASET)/*/*) $(wildcard data/lookups/*)
PYTEST_ARGS ?=
# The PARAMS of the last build, rewritten only when they change: every stage depends
# on it, so a stage built with other parameters is out of date.
PARAMS_STAMP := $(OUT)/.params

export PAINMETA_ROOT := $(CURDIR)
# Recipes read PARAMS from the environment ("$$PAINMETA_PARAMS"): its raw text, never
# expanded by make nor pasted into a command line.
export PAINMETA_PARAMS := $(value PARAMS)
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

# Stage notebooks present in notebooks/ (Jupytext py:percent sources NN_name.py), in order.
STAGES := $(basename $(notdir $(sort $(wildcard notebooks/[0-9][0-9]_*.py))))
STAGE_HTML := $(addprefix $(REPORT)/,$(addsuffix .html,$(STAGES)))

##@ Main
.PHONY: all
all: $(STAGE_HTML) ## Run every stage on DATASET and render the HTML report (bootstraps .venv)
	@$(MAKE) --no-print-directory report DATASET=$(DATASET)
	@echo "Report: $(REPORT)/index.html"

.PHONY: test
test: $(STAMP) ## Run the test suite (pytest, including notebook execution on every dataset)
	$(PY) -m pytest -n 2 --dist load $(PYTEST_ARGS)

.PHONY: test-fast
test-fast: $(STAMP) ## Tests without the slow notebook executions
	$(PY) -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

##@ Stages (each also available as a file target)
.PHONY: extraction ale roi proportions quality audit
extraction: $(REPORT)/00_extraction.html ## Stage 0: validate tables, QA, exports
ale: $(REPORT)/01_ale.html ## Stage 1: ALE (NiMARE + in-house cross-check)
roi: $(REPORT)/02_roi_matrices.html ## Stage 2: ROI matrices
proportions: $(REPORT)/03_proportions.html ## Stage 3: proportion meta-analysis and forest plots
quality: $(REPORT)/04_quality.html ## Stage 4: ROBINS-I and PRISMA
audit: $(REPORT)/05_audit.html ## Stage 5: reproduction audit

.PHONY: report
report: $(STAMP) ## Write outputs/<dataset>/report/index.html linking the rendered stages
	$(PY) -m painmeta report --dataset $(DATASET)

# Stage 0 depends on the raw tables; later stages depend on stage 0 and, through
# the alphabetical order of STAGES, on the stage before them.
$(REPORT)/00_extraction.html: notebooks/00_extraction.py $(RAW) $(SRC) $(STAMP) $(PARAMS_STAMP)
	$(PY) -m painmeta run-stage 00_extraction --dataset $(DATASET) --params "$$PAINMETA_PARAMS"

define stage_rule
$(REPORT)/$(1).html: notebooks/$(1).py $(REPORT)/$(2).html $(SRC) $(STAMP) $(PARAMS_STAMP)
	$(PY) -m painmeta run-stage $(1) --dataset $(DATASET) --params "$$$$PAINMETA_PARAMS"
endef

# Touched only when PARAMS differ from the last build's (cmp), so an unchanged PARAMS
# leaves every stage up to date.
$(PARAMS_STAMP): FORCE
	@mkdir -p "$(@D)"
	@printf '%s\n' "$$PAINMETA_PARAMS" > "$@.tmp"
	@if cmp -s "$@.tmp" "$@"; then rm -f "$@.tmp"; else mv -f "$@.tmp" "$@"; fi

.PHONY: FORCE
FORCE:
$(foreach i,$(shell seq 2 $(words $(STAGES))),$(eval $(call stage_rule,$(word $(i),$(STAGES)),$(word $(shell expr $(i) - 1),$(STAGES)))))

##@ Environment
$(STAMP): env/requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r env/requirements.lock
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name painmeta --display-name "Python (painmeta)" >/dev/null
	touch $@

.PHONY: venv
venv: $(STAMP) ## Create .venv from the pinned lock and register the 'painmeta' Jupyter kernel

.PHONY: lock
lock: ## Re-resolve env/requirements.in into env/requirements.lock (needs PyPI)
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -r env/requirements.in
	{ echo "# Resolved, pinned environment for painmeta (Python 3.11). Generated by: make lock"; \
	  echo "# Regenerate after editing env/requirements.in; install with: make venv"; \
	  .venv-lock/bin/pip freeze --exclude-editable; } > env/requirements.lock
	rm -rf .venv-lock

.PHONY: lab
lab: $(STAMP) ## Open JupyterLab on the project (kernel 'Python (painmeta)'); notebooks/*.py open as notebooks
	$(VENV)/bin/jupyter lab --notebook-dir=$(CURDIR) $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: notebooks
notebooks: $(STAMP) ## Write paired notebooks/*.ipynb from the py:percent sources (git ignores the .ipynb)
	$(VENV)/bin/jupytext --sync notebooks/[0-9][0-9]_*.py

##@ Checks
.PHONY: validate
validate: $(STAMP) ## Validate the raw tables of DATASET
	$(PY) -m painmeta validate --dataset $(DATASET)

.PHONY: bench
bench: $(STAMP) ## Benchmarks (ALE Monte Carlo null): writes outputs/bench/*.csv
	$(PY) bench/bench_ale.py --out outputs/bench/ale.csv

.PHONY: check-report
check-report: $(STAMP) ## Open every report page in headless Chromium (whole-page screenshots in outputs/DATASET/report_check/); fail on console errors, broken images, dead links or unescaped markup
	$(PY) -m painmeta check-report --dataset $(DATASET)

.PHONY: clean
clean: ## Remove outputs and processed data of DATASET (keeps .venv); DATASET is checked above
	rm -rf -- "$(WORK)outputs/$(DATASET)" "$(WORK)data/processed/$(DATASET)"

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target> [DATASET=name under data/raw/] [PARAMS=JSON]\n"} \
	  /^##@/ {printf "\n%s\n", substr($$0, 5)} \
	  /^[a-zA-Z_-]+:.*##/ {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
