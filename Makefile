# Every target sets up .venv first if needed (fresh machine: python3 with venv is all it takes).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install train lint test test-fast bench digits clean

install: $(VENV)/.installed

PLUGINS := plugins/cnnkit-lenet5 plugins/cnnkit-gridmask plugins/cnnkit-csvdata plugins/cnnkit-lsuv plugins/cnnkit-lrfind plugins/cnnkit-powersgd plugins/cnnkit-jsonlog

$(VENV)/.installed: pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]' $(addprefix -e ,$(PLUGINS))
	touch $@

train: install
	$(BIN)/cnnkit train

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy cnnkit

test: lint
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow" -q

bench: install
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/train_loop.py
	$(BIN)/python benchmarks/loop_overhead.py
	$(BIN)/python benchmarks/precision.py
	$(BIN)/python benchmarks/ddp_scaling.py
	$(BIN)/python benchmarks/observer_overhead.py
	$(BIN)/python benchmarks/unbalanced.py

digits: install
	$(BIN)/python -m pip install --quiet -e '.[data]'
	$(BIN)/python scripts/make_digits.py

clean:
	rm -rf $(VENV) runs .pytest_cache
