# crystal-course: everything a fresh machine needs, from Python 3.11, make and npm
# (and apt-get for Chromium, which `make book` installs when it is missing).
#   make book       build the website into _build/html (executes every chapter), then
#                   test every page in headless Chromium
#   make test       ruff, a no-execution -W book build, unit tests + nbval over every chapter
#                   (pinned stack), and the Colab stack (make test-colab)
#   make test-colab on Colab's versions: the shipped model, generation on a Dask cluster,
#                   training on two devices, every chapter's solutions graded by its
#                   autograder, and the student notebooks run top to bottom
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
# Colab's stack (constraints-colab.txt), in a virtual environment of its own.
COLAB_VENV  := _build/colab-venv
COLAB_PY    := $(COLAB_VENV)/bin/python
COLAB_STAMP := $(COLAB_VENV)/.installed-stamp
# MathJax, served by the website itself (npm, package-lock.json): math renders offline.
MATHJAX := _build/static/mathjax/tex-mml-chtml.js
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# TensorFlow's C++ log lines are noise in test and build logs.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: all install book test test-colab site-test lint unit notebooks assignments chapters \
	check-book bench lock clean

all: test

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"

# Exact versions from constraints.txt (also inside pip's isolated build environment).
$(STAMP): pyproject.toml constraints.txt | $(PY)
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(PY) -m pip install --quiet -e ".[cpu,book,test,cluster]"
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
# grading of whole assignments runs on the Colab stack (tests/grading).
unit: $(STAMP) chapters
	$(PY) -m pytest tests $(CHAPTERS) --ignore=tests/grading --nbval-lax -p no:cacheprovider

# The whole book with execution off and -W: broken markup, references, toc entries and
# exercise labels fail here without executing the chapters a second time.
check-book: $(STAMP) $(MATHJAX)
	$(PY) -m crystal_course.notebooks noexec-config _config.yml _build/_config_noexec.yml
	$(VENV)/bin/jupyter-book build . --config _build/_config_noexec.yml \
		--path-output _build/check -W -n --keep-going
	$(PY) -m crystal_course.notebooks check-links _build/check/_build/html book

test: lint check-book unit test-colab

# Colab's stack: the package installed FROM ITS DECLARED RANGES (pyproject.toml, not
# constraints.txt) under constraints-colab.txt, with Colab's pip, into a second venv.
$(COLAB_STAMP): pyproject.toml constraints-colab.txt
	rm -rf $(COLAB_VENV)
	$(PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_PY) -m pip install --quiet -c constraints-colab.txt pip
	$(COLAB_PY) -m pip install --quiet -c constraints-colab.txt ".[tf,test,cluster]"
	$(COLAB_PY) -m pip check
	touch $@

# The current sources are reinstalled (not linked) on every run, package data included;
# the tests import that installed copy.
test-colab: $(COLAB_STAMP)
	$(COLAB_PY) -m pip install --quiet --no-deps --force-reinstall .
	cd $(COLAB_VENV) && bin/python -c "import crystal_course as c, keras, tensorflow as tf, \
		numpy as np; print('Colab stack:', c.__file__, 'keras', keras.__version__, \
		'tensorflow', tf.__version__, 'numpy', np.__version__)"
	$(COLAB_VENV)/bin/pytest tests/test_shipped_model.py tests/test_cluster.py \
		tests/test_distribute.py tests/grading -p no:cacheprovider \
		--durations=20

notebooks: $(STAMP)
	$(PY) -m crystal_course.notebooks sync _config.yml book

assignments: $(STAMP)
	$(PY) -m crystal_course.assignments build _config.yml book _build/assignments

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

lock: $(PY)
	rm -rf _build/lock-venv
	$(PYTHON) -m venv _build/lock-venv
	_build/lock-venv/bin/pip install --quiet --upgrade "pip>=24"
	_build/lock-venv/bin/pip install --quiet -e ".[cpu,book,test,cluster]"
	( echo "# Exact versions for crystal-course's own installs and CI (make lock regenerates)."; \
	  _build/lock-venv/bin/pip freeze --exclude-editable | grep -v '^crystal.course'; \
	  echo "# build backend, used inside pip's isolated build environment"; \
	  _build/lock-venv/bin/pip download --quiet --no-deps -d _build/lock-dl setuptools \
	    && ls _build/lock-dl | sed -n 's/^setuptools-\([^-]*\)-.*/setuptools==\1/p' ) > constraints.txt

clean:
	rm -rf _build .pytest_cache .ruff_cache
