# Thin calls of the CLI (see README). Override the interpreter with VENV=path.
VENV ?= .venv
GEO := $(VENV)/bin/geolocate
BATCH ?= 01

.PHONY: demo test batch export clean-raw bench

demo:
	bash scripts/bootstrap.sh demo

test:
	bash scripts/bootstrap.sh test

batch:
	$(GEO) batch $(BATCH) --profile v1

export:
	$(GEO) export

clean-raw:
	$(GEO) clean-raw

bench:
	$(VENV)/bin/python benchmarks/run_all.py
