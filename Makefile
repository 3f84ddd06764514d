# Self-documenting: `make help`. Everything runs from a local .venv that this Makefile creates.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
LINES  ?= 1000000
RATE   ?= auto
PORT   ?= 8080

.DEFAULT_GOAL := help
.PHONY: help install demo load-demo serve test test-fast bench lint audit format clean stop

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## Create .venv with the `kpi` command and every dependency

demo: install ## Everything from nothing: embedded PostgreSQL, demo business, then serve the dashboards live
	$(BIN)/kpi init
	$(BIN)/kpi demo --lines $(LINES)
	$(BIN)/kpi status
	$(BIN)/kpi serve --port $(PORT) --simulate $(RATE)

load-demo: install ## Only build the warehouse and load the demo business (no serving)
	$(BIN)/kpi init
	$(BIN)/kpi demo --lines $(LINES)
	$(BIN)/kpi status

serve: install ## Serve the dashboards (login, Panel, Voila, inbox, live alerts) on PORT with live orders
	$(BIN)/kpi serve --port $(PORT) --simulate $(RATE)

test: install ## Run the whole test suite (unit, integration on a real Postgres, notebooks, browser)
	$(BIN)/pytest

test-fast: install ## Tests without the browser and notebook suites
	$(BIN)/pytest -m "not ui" --ignore=tests/notebooks

bench: install ## Run the benchmarks (they print JSON; not part of `make test`)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: install ## ruff check and format check, and the import floors (import-linter, pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check kpi_lib tests benchmarks scripts
	$(BIN)/lint-imports

audit: install ## Check the installed packages for known vulnerabilities (pip-audit; needs PyPI's advisory API)
	$(BIN)/pip-audit --progress-spinner off

format: install ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format kpi_lib tests benchmarks scripts

stop: ## Stop the embedded PostgreSQL
	-$(BIN)/kpi stop

clean: stop ## Remove the warehouse data (var/) and the virtualenv
	rm -rf var $(VENV)
