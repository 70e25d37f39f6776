# crystal-course: everything a fresh machine needs, from Python 3.11, make and npm
# (and apt-get for Chromium, which `make book` installs when it is missing).
#   make book       build the website into _build/html (executes every chapter), then
#                   test every page in headless Chromium
#   make test       ruff, a no-execution -W book build, unit tests + nbval over every chapter
#                   (pinned stack), the Colab stack (make test-colab) and the lowest declared
#                   versions on Python 3.11 (make test-lowest); prints the time of each part
#   make test-colab on Colab's Python (3.13) and versions: the shipped model, generation on a
#                   Dask cluster, training on two devices, and every student notebook run
#                   once and graded (zero), then its solutions on the same kernel (full marks)
#   make test-lowest  the declared lower bounds on Python 3.11: install, and the unit tests
#                   of the modules that use them
#   make notebooks  regenerate the output-free .ipynb twins (student editions) and the
#                   exercises' shipped public tests from the book/*.md sources
#   make assignments  every chapter's student notebook, instructor notebook and otter-grader
#                   autograder zip, under _build/assignments/
#   make lock       re-resolve the exact versions in constraints.txt
#   make bench      run the benchmarks in bench/

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# Colab's stack (constraints-colab.txt) on Colab's Python, 3.13, in a virtual environment of
# its own: python3.13 on PATH, else the image's pyenv build (pyenv's shim alone may not run).
ifndef COLAB_PYTHON
COLAB_PYTHON := $(shell for p in python3.13 $(HOME)/.pyenv/versions/3.13*/bin/python3.13; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null \
	&& { command -v "$$p"; break; }; done)
export COLAB_PYTHON
endif
COLAB_VENV  := _build/colab-venv
COLAB_PY    := $(COLAB_VENV)/bin/python
COLAB_STAMP := $(COLAB_VENV)/.installed-stamp
# The declared lower bounds (constraints-colab.txt) on the oldest supported Python, 3.11.
LOWEST_VENV  := _build/lowest-venv
LOWEST_STAMP := $(LOWEST_VENV)/.installed-stamp
# The modules whose dependencies have lower bounds of their own (ASE, spglib, pyxtal, keract,
# otter-grader, jupytext, nbval, pybtex), and the shipped model on the lowest Keras.
LOWEST_TESTS := tests/test_structures.py tests/test_diffraction.py tests/test_dataset.py \
	tests/test_explain.py tests/test_assignments.py tests/test_markdown.py \
	tests/test_shipped_model.py tests/test_powder.py tests/test_invariant.py
# Generated data of the test runs, one folder per stack, shared by the runs of a stack
# (empty in a fresh clone: the chapters generate their data sets as a student's first run).
TEST_DATA := $(CURDIR)/_build/test-data
TIMES     := _build/test-times.txt
# The Colab and lowest stacks install a copy of the package's sources, so that their
# builds never share the work tree's build folders with the pinned stack's editable install.
PKG_COPY := _build/package-src
copy_package = rm -rf $(PKG_COPY) && mkdir -p $(PKG_COPY) \
	&& cp -r pyproject.toml README.md LICENSE crystal_course $(PKG_COPY)/
# MathJax, served by the website itself (npm, package-lock.json): math renders offline.
MATHJAX := _build/static/mathjax/tex-mml-chtml.js
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# TensorFlow's C++ log lines are noise in test and build logs.
export TF_CPP_MIN_LOG_LEVEL ?= 2
# uv installs every environment (seconds, where pip takes minutes). It reads the package
# indexes, find-links and certificate pip is configured with (pip.conf or PIP_* variables)
# and, like pip, takes the best version over all indexes. It leaves the bytecode to the
# first import, so the test runs may write it: each module is compiled once, not in every
# kernel (some machines set PYTHONDONTWRITEBYTECODE).
UV_VERSION := 0.13.9
UV_HOME := _build/uv
UV := $(UV_HOME)/bin/uv
uv_env = $(shell $(PYTHON) -m pip config list 2>/dev/null | tac | sed -n \
	-e "s/^[^.]*\.extra-index-url=/UV_EXTRA_INDEX_URL=/p" -e "s/^[^.]*\.index-url=/UV_INDEX_URL=/p" \
	-e "s/^[^.]*\.find-links=/UV_FIND_LINKS=/p" -e "s/^[^.]*\.cert=/SSL_CERT_FILE=/p") \
	UV_INDEX_STRATEGY=unsafe-best-match
uv_install = $(uv_env) $(UV) pip install --quiet --python
unexport PYTHONDONTWRITEBYTECODE

.PHONY: all install book test test-colab test-lowest site-test lint unit notebooks assignments \
	chapters check-book bench lock clean

all: test

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"

# uv in an environment of its own, which every stack's install shares.
$(UV):
	rm -rf $(UV_HOME)
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet "uv==$(UV_VERSION)"

# Exact versions from constraints.txt (also in the isolated build environment).
$(STAMP): pyproject.toml constraints.txt | $(PY) $(UV)
	$(uv_install) $(PY) -c constraints.txt -b constraints.txt -e ".[cpu,book,test,cluster,lab]"
	touch $@

install: $(STAMP)

$(MATHJAX): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	rm -rf _build/static/mathjax && mkdir -p _build/static
	cp -r node_modules/mathjax/es5 _build/static/mathjax
	rm -rf _build/static/mathjax/sre  # speech rules: not used by the pages, 4 MB
	touch $@

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

book: $(STAMP) $(MATHJAX)
	$(VENV)/bin/jupyter-book build . --all -W --keep-going
	$(PY) -m crystal_course.notebooks check-links _build/html book
	$(MAKE) site-test
	@echo "Website: _build/html/index.html (screenshots: _build/screenshots/)"

# Every built page in headless Chromium: console, images, links, Colab buttons, math.
site-test: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest site_tests -p no:cacheprovider --html-dir _build/html \
		--chromium $(CHROMIUM) --screenshots _build/screenshots

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The chapters WITH their solutions, output-free, for nbval (the committed twins in book/
# are the student editions, without solutions).
CHAPTERS := _build/chapters
chapters: $(STAMP)
	$(PY) -m crystal_course.notebooks full book $(CHAPTERS)

# Unit tests and nbval over every chapter with its solutions, in one pytest run. The
# grading of whole assignments, the Dask cluster, the two-device training and Chapter 8's
# invariant descriptors run on the Colab stack (make test-colab; the descriptors also on
# the lowest), which keeps the two lanes of make test about even.
unit: $(STAMP) chapters
	CRYSTAL_COURSE_DATA=$(TEST_DATA)/pinned $(PY) -m pytest tests $(CHAPTERS) \
		--ignore=tests/grading --ignore=tests/test_cluster.py --ignore=tests/test_distribute.py \
		--ignore=tests/test_invariant.py --nbval-lax -p no:cacheprovider --durations=15

# The whole book with execution off and -W: broken markup, references, toc entries and
# exercise labels fail here without executing the chapters a second time.
check-book: $(STAMP) $(MATHJAX)
	$(PY) -m crystal_course.notebooks noexec-config _config.yml _build/_config_noexec.yml
	$(VENV)/bin/jupyter-book build . --config _build/_config_noexec.yml \
		--path-output _build/check -W -n --keep-going
	$(PY) -m crystal_course.notebooks check-links _build/check/_build/html book

# Two lanes side by side, as neither keeps both cores busy on its own: the pinned stack,
# and Colab's stack followed by the no-execution book build (on the pinned stack, installed
# by then) and the lowest versions, so that the lanes take about as long. Each part is
# timed; every line of output carries its lane's name; the times are printed at the end
# (also after a failure).
PINNED_PARTS := install lint unit
COLAB_PARTS  := colab-install test-colab check-book lowest-install test-lowest
define lane
for part in $(2); do start=$$(date +%s); \
  $(MAKE) --no-print-directory $$part 2>&1 | sed -u "s/^/[$(1)] /"; status=$${PIPESTATUS[0]}; \
  echo "$(1) $$part $$(( $$(date +%s) - start ))" >> $(TIMES); \
  if [ $$status != 0 ]; then echo "[$(1)] make test: $$part failed"; exit 1; fi; done
endef
test: SHELL := /bin/bash
test:
	@mkdir -p _build && : > $(TIMES); start=$$(date +%s); \
	$(MAKE) --no-print-directory $(UV) || exit 1; \
	( $(call lane,pinned,$(PINNED_PARTS)) ) & pinned=$$!; \
	( $(call lane,colab,$(COLAB_PARTS)) ) & colab=$$!; \
	wait $$pinned; a=$$?; wait $$colab; b=$$?; \
	echo "make test: seconds per part (two lanes side by side, this machine)"; \
	awk '{ printf "  %-7s %-15s %5d s\n", $$1, $$2, $$3 }' $(TIMES); \
	total=$$(( $$(date +%s) - start )); \
	echo "  total (wall clock)      $$total s ($$(( total / 60 )) min $$(( total % 60 )) s)"; \
	[ $$a = 0 ] && [ $$b = 0 ]

colab-install: $(COLAB_STAMP)
lowest-install: $(LOWEST_STAMP)

# Colab's stack: the package installed FROM ITS DECLARED RANGES (pyproject.toml, not
# constraints.txt) under constraints-colab.txt, with Colab's pip, on Colab's Python.
$(COLAB_STAMP): pyproject.toml constraints-colab.txt | $(UV)
	@if [ -z "$(COLAB_PYTHON)" ] && [ -n "$$CI" ]; then \
	  echo "make test-colab: no Python 3.13 (python3.13 or ~/.pyenv/versions/3.13*); CI needs Colab's Python"; \
	  exit 1; fi
	@[ -n "$(COLAB_PYTHON)" ] || echo "make test-colab: no Python 3.13 found (python3.13 or ~/.pyenv/versions/3.13*): falling back to $(PYTHON), which is not Colab's Python"
	rm -rf $(COLAB_VENV)
	$(or $(COLAB_PYTHON),$(PYTHON)) -m venv $(COLAB_VENV)
	$(copy_package)
	$(uv_install) $(COLAB_PY) -c constraints-colab.txt pip "./$(PKG_COPY)[tf,test,cluster]"
	$(COLAB_PY) -m pip check
	touch $@

# The lowest versions: the same constraints (Colab's versions are the lower bounds of what
# Colab ships, section 2 pins the others at their bounds), on Python 3.11.
$(LOWEST_STAMP): pyproject.toml constraints-colab.txt | $(UV)
	rm -rf $(LOWEST_VENV)
	$(PYTHON) -m venv $(LOWEST_VENV)
	$(copy_package)
	$(uv_install) $(LOWEST_VENV)/bin/python -c constraints-colab.txt pip \
		"./$(PKG_COPY)[tf,test,cluster,lab]"
	$(LOWEST_VENV)/bin/python -m pip check
	touch $@

test-lowest: $(LOWEST_STAMP)
	$(copy_package)
	$(uv_install) $(LOWEST_VENV)/bin/python --no-deps --reinstall ./$(PKG_COPY)
	cd $(LOWEST_VENV) && bin/python -c "import sys, crystal_course as c, ase, spglib, keras; \
		print('Lowest stack: python', sys.version.split()[0], 'ase', ase.__version__, \
		'spglib', spglib.__version__, 'keras', keras.__version__)"
	CRYSTAL_COURSE_STACK=lowest $(LOWEST_VENV)/bin/pytest tests/test_environment.py \
		$(LOWEST_TESTS) -p no:cacheprovider -q

# The current sources are reinstalled (not linked) on every run, package data included;
# the tests import that installed copy.
test-colab: $(COLAB_STAMP)
	$(copy_package)
	$(uv_install) $(COLAB_PY) --no-deps --reinstall ./$(PKG_COPY)
	cd $(COLAB_VENV) && bin/python -c "import sys, crystal_course as c, keras, tensorflow as tf, \
		numpy as np; print('Colab stack: python', sys.version.split()[0], c.__file__, 'keras', \
		keras.__version__, 'tensorflow', tf.__version__, 'numpy', np.__version__)"
	CRYSTAL_COURSE_STACK=colab CRYSTAL_COURSE_DATA=$(TEST_DATA)/colab $(COLAB_VENV)/bin/pytest \
		tests/test_environment.py tests/test_shipped_model.py tests/test_cluster.py \
		tests/test_distribute.py tests/test_invariant.py tests/grading -p no:cacheprovider \
		--durations=20

notebooks: $(STAMP)
	$(PY) -m crystal_course.assignments sync _config.yml book

assignments: $(STAMP)
	$(PY) -m crystal_course.assignments build _config.yml book _build/assignments

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

lock: $(PY)
	rm -rf _build/lock-venv
	$(PYTHON) -m venv _build/lock-venv
	_build/lock-venv/bin/pip install --quiet --upgrade "pip>=24"
	_build/lock-venv/bin/pip install --quiet -e ".[cpu,book,test,cluster,lab]"
	( echo "# Exact versions for crystal-course's own installs and CI (make lock regenerates)."; \
	  _build/lock-venv/bin/pip freeze --exclude-editable | grep -v '^crystal.course'; \
	  echo "# build backend, used inside pip's isolated build environment"; \
	  _build/lock-venv/bin/pip download --quiet --no-deps -d _build/lock-dl setuptools \
	    && ls _build/lock-dl | sed -n 's/^setuptools-\([^-]*\)-.*/setuptools==\1/p' ) > constraints.txt

clean:
	rm -rf _build .pytest_cache .ruff_cache
