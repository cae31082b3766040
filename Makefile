# Two entry points for a new user: `make demo` and `make test`.
# Each creates .venv and installs the package with the pinned constraints first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,plot]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m sk_mmoe

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --doctest-modules sk_mmoe tests

clean:
	rm -rf $(VENV) build dist *.egg-info
