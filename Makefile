# Two entry points for a new user: `make demo` and `make test`.
# Each creates .venv and installs the package with the pinned constraints first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-distributed test-launchers install clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,plot]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m sk_mmoe

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --doctest-modules -m "not distributed and not launchers" sk_mmoe tests

# Starts 2 gloo ranks per test (torchrun, one torch thread each): not under xdist, which
# would put 4 processes on 2 cores; every process has a timeout.
test-distributed: $(STAMP)
	$(BIN)/python -m pytest -p no:xdist -m distributed tests/test_distributed.py tests/test_benchmarks_scale.py

# fit_ray / fit_spark under Ray Train and Spark (installs the ray and spark extras, ~600 MB;
# Spark needs Java): minutes, mostly the launchers' start-up. Not part of `make test`.
test-launchers: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[ray,spark]"
	$(BIN)/python -m pytest -p no:xdist -m launchers tests/test_launchers.py

clean:
	rm -rf $(VENV) build dist *.egg-info
