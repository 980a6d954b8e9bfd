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
	$(GEO) batch $(BATCH) --profile $(PROFILE) $(ARGS)

export:
	$(GEO) export $(ARGS)

clean-raw:
	$(GEO) clean-raw $(ARGS)

kpi:
	$(GEO) kpi

bench:
	$(VENV)/bin/python benchmarks/run_all.py
