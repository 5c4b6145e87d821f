# Two commands do everything from a fresh clone: `make book` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book test figures clean venv bench vendor browser edition pdf

# The virtual environment, rebuilt whenever the pins or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "accelbook needs Python 3.10 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# MathJax and the widget manager, fetched from the npm registry so the site serves them itself
# (book/_ext/vendor.json). Without npm the book still builds and loads them from CDNs.
vendor: $(STAMP)
	$(BIN)/python book/_ext/vendor.py

# Debian's chromium, which the browser tests drive through Playwright (no browser download).
BROWSER_STAMP := $(VENV)/.browser
$(BROWSER_STAMP): $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || { echo "chromium could not be installed: the browser tests need it"; exit 1; }
	touch $(BROWSER_STAMP)

browser: $(BROWSER_STAMP)

# The notebook edition (notebooks/): each chapter rewritten for Colab and plain Jupyter, with the
# text filled in from the reader's own run (book/_ext/edition.py). Committed; tests keep it in step.
edition: $(STAMP)
	$(BIN)/python book/_ext/edition.py

# Execute every chapter on this machine (cached between builds) and write the HTML book.
book: $(STAMP) vendor edition
	$(BIN)/jupyter-book build -W -n --keep-going book/
	@echo "The book is in book/_build/html/index.html"

# The whole book as one PDF, book/_build/pdf/accelbook.pdf (book/_ext/pdf.py): a print build of the
# book (its own cache in book/_build/print; figures at twice their dpi, explorables as SVG), printed
# offline by Debian's chromium behind a cover and a table of contents.
pdf: $(STAMP) vendor $(BROWSER_STAMP)
	$(BIN)/python book/_ext/pdf.py --print-build

# Every figure of every chapter as SVG and PNG in figures/<chapter>/<name>.{svg,png}, executed on
# this machine; `make figures CHAPTER=02` for one chapter.
figures: $(STAMP)
	$(BIN)/python -m accelbook.figures $(if $(CHAPTER),--chapter $(CHAPTER))

# The whole test suite: library, notebooks, a clean -W -n build of the book, and the chapters run in
# the Colab and lowest-version environments (built in the background while the rest runs).
test: $(STAMP) vendor $(BROWSER_STAMP)
	$(BIN)/python -m pytest

# Timing scripts: they print ratios measured side by side; never part of pass/fail.
bench: $(STAMP)
	$(BIN)/python benchmarks/matmul_vs_numpy.py
	$(BIN)/python benchmarks/book_build_time.py
	$(BIN)/python benchmarks/explore_update.py

clean:
	rm -rf book/_build book/_vendor
