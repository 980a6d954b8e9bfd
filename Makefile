# Thin calls of the CLI (see README). Override the interpreter with VENV=path.
VENV ?= .venv
GEO := $(VENV)/bin/geolocate
BATCH ?= 01
PROFILE ?= v1
ARGS ?=

.PHONY: demo test batch export clean-raw kpi bench

demo:
	bash scripts/bootstrap.sh demo

test:
	bash scripts/bootstrap.sh test

# make batch BATCH=03 [PROFILE=tiny] [ARGS="--synthetic --clean-raw"]: the per-batch plan, resumable.
batch:
	$(GEO) batch --batch $(BATCH) --profile $(PROFILE) $(ARGS)

export:
	$(GEO) export $(ARGS)

clean-raw:
	$(GEO) clean-raw $(ARGS)

kpi:
	$(GEO) kpi

# Every benchmark, short runs (see benchmarks/README.md for the full commands behind RESULTS.md).
bench:
	$(VENV)/bin/python benchmarks/bench_cli_startup.py --quick
	$(VENV)/bin/python benchmarks/bench_cells_split.py --runs 1
	$(VENV)/bin/python benchmarks/bench_fetch.py --runs 1
	$(VENV)/bin/python benchmarks/bench_fetch.py --source panoramax --runs 1
	$(VENV)/bin/python benchmarks/bench_import.py --copies 2 --runs 1
	$(VENV)/bin/python benchmarks/bench_synth.py --runs 1
	$(VENV)/bin/python benchmarks/bench_train_loader.py --quick
	$(VENV)/bin/python benchmarks/bench_predict.py --quick
