# Two commands do everything from a fresh clone: `make book` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book test clean venv bench

# The virtual environment, rebuilt whenever the pins or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "accelbook needs Python 3.10 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# Execute every chapter on this machine (cached between builds) and write the HTML book.
book: $(STAMP)
	$(BIN)/jupyter-book build -W -n --keep-going book/
	@echo "The book is in book/_build/html/index.html"

# The whole test suite: library, notebooks, and a clean -W -n build of the book.
test: $(STAMP)
	$(BIN)/python -m pytest

# Timing scripts: they print ratios measured side by side; never part of pass/fail.
bench: $(STAMP)
	$(BIN)/python benchmarks/matmul_vs_numpy.py
	$(BIN)/python benchmarks/book_build_time.py

clean:
	rm -rf book/_build
