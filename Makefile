# crystal-course: everything a fresh machine needs, from Python 3.11 and make.
#   make book       build the website into _build/html (executes every chapter)
#   make test       unit tests + nbval over every chapter + a no-execution -W book build
#   make notebooks  regenerate the output-free .ipynb twins from the book/*.md sources
#   make lock       re-resolve the exact versions in constraints.txt
#   make bench      run the benchmarks in bench/

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# TensorFlow's C++ log lines are noise in test and build logs.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: all install book test lint unit notebooks check-book bench lock clean

all: test

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"

# Exact versions from constraints.txt (also inside pip's isolated build environment).
$(STAMP): pyproject.toml constraints.txt | $(PY)
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(PY) -m pip install --quiet -e ".[cpu,book]"
	touch $@

install: $(STAMP)

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W --keep-going
	$(PY) -m crystal_course.notebooks check-links _build/html book
	@echo "Website: _build/html/index.html"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Unit tests and nbval over every chapter twin, in one pytest run (one summary line).
unit: $(STAMP)
	$(PY) -m pytest tests book --nbval-lax -p no:cacheprovider

# The whole book with execution off and -W: broken markup, references, toc entries and
# exercise labels fail here without executing the chapters a second time.
check-book: $(STAMP)
	$(PY) -m crystal_course.notebooks noexec-config _config.yml _build/_config_noexec.yml
	$(VENV)/bin/jupyter-book build . --config _build/_config_noexec.yml \
		--path-output _build/check -W -n --keep-going
	$(PY) -m crystal_course.notebooks check-links _build/check/_build/html book

test: lint check-book unit

notebooks: $(STAMP)
	$(PY) -m crystal_course.notebooks sync _config.yml book

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

lock: $(PY)
	rm -rf _build/lock-venv
	$(PYTHON) -m venv _build/lock-venv
	_build/lock-venv/bin/pip install --quiet --upgrade "pip>=24"
	_build/lock-venv/bin/pip install --quiet -e ".[cpu,book]"
	( echo "# Exact versions for crystal-course's own installs and CI (make lock regenerates)."; \
	  _build/lock-venv/bin/pip freeze --exclude-editable | grep -v '^crystal.course'; \
	  echo "# build backend, used inside pip's isolated build environment"; \
	  _build/lock-venv/bin/pip download --quiet --no-deps -d _build/lock-dl setuptools \
	    && ls _build/lock-dl | sed -n 's/^setuptools-\([^-]*\)-.*/setuptools==\1/p' ) > constraints.txt

clean:
	rm -rf _build .pytest_cache .ruff_cache
