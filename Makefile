# mnistnet: `make lab` to learn, `make test` to check everything.
# Everything is installed into ./.venv; nothing outside the project is touched.
# Each target is idempotent: a second run skips what is already done.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
# JupyterLab refuses to run as root unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
NBVAL  := --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: help lock setup setup-test data lab test test-unit test-notebooks test-kernels test-ui test-install test-min notebooks bench clean

help:
	@echo "make lab           set up .venv, fetch MNIST, open JupyterLab on notebooks/"
	@echo "make test          set up .venv (with test extras), fetch MNIST, run every test and notebook"
	@echo "make test-kernels  the notebooks again under other OpenBLAS kernels (KERNELS=, NB=)"
	@echo "make test-ui       the real-browser test of the training widget (needs chromium)"
	@echo "make test-install  Binder's build and the README's make-free commands, each in a fresh virtualenv"
	@echo "make test-min      the tests again on the oldest numpy, matplotlib, … that pyproject.toml allows"
	@echo "make notebooks     re-execute every notebook in place (NB= for some), so committed outputs are what a run gives"
	@echo "make bench         accuracy and speed benchmark"
	@echo "make student       a copy of the notebooks without the exercise solutions, in build/student/"
	@echo "make lock          re-resolve pyproject.toml's ranges into requirements*.lock (then: make test)"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Installs come from the lock files: exact versions that CI has run, so a fresh
# clone gets what was tested, not whatever is newest that day. pyproject.toml keeps
# the ranges we support (its lower bounds are tested by `make test-min`);
# `make lock` re-resolves them into new lock files, then run `make test`.
# Stamp files record that the install matching the lock files is done.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings
$(VENV)/.installed: requirements.lock pyproject.toml binder/overrides.json | $(PY)
	$(PIP) install -r requirements.lock
	$(PIP) install --no-deps -e .
	@# JupyterLab settings: no news pop-up, no update check (binder/overrides.json).
	mkdir -p $(LAB_SETTINGS) && cp binder/overrides.json $(LAB_SETTINGS)/overrides.json
	@touch $@

$(VENV)/.installed-test: requirements-test.lock $(VENV)/.installed
	$(PIP) install -r requirements-test.lock
	@touch $@

# Re-resolve pyproject.toml's ranges into the lock files, with uv in a throw-away
# virtualenv: requirements-test.lock (everything `make test` installs) and
# requirements.lock (the runtime part, for `make lab` and Binder), the same versions
# in both. The resolution is universal: one lock for every platform and for every
# Python from 3.10 (lines such as `numpy==2.2.6 ; python_full_version < '3.11'`);
# CI runs the branch of its own Python.
LOCK_VENV := .venv-lock
UV_COMPILE = $(LOCK_VENV)/bin/uv pip compile pyproject.toml --quiet --universal \
	--python-version 3.10 --custom-compile-command "make lock"
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip --disable-pip-version-check install -q uv
	$(UV_COMPILE) --upgrade --extra test -o requirements-test.lock
	$(UV_COMPILE) --constraint requirements-test.lock -o requirements.lock
	rm -rf $(LOCK_VENV)
	@echo "lock files written; now run: make test"

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test

# Fast when the data is already cached: it only checks the cache.
data: setup
	$(PY) -m mnistnet fetch

lab: setup data
	cd notebooks && ../$(VENV)/bin/jupyter lab $(ROOT_FLAG)

test: setup-test data
	$(PY) -m pytest tests --ignore=tests/ui --ignore=tests/install $(NBVAL) notebooks

test-unit: setup-test
	$(PY) -m pytest tests --ignore=tests/ui --ignore=tests/install

test-notebooks: setup-test data
	$(PY) -m pytest $(NBVAL) notebooks

# The notebooks' stored outputs must not depend on how the CPU's BLAS rounds.
# OpenBLAS picks a kernel per CPU; these are the ones we check (CI runs one of them
# besides the machine's own). NB= limits the run to some notebooks, as for `make notebooks`.
KERNELS ?= Prescott Sandybridge
test-kernels: setup-test data
	@set -e; for k in $(KERNELS); do \
		echo "== OPENBLAS_CORETYPE=$$k"; \
		OPENBLAS_CORETYPE=$$k $(PY) -m pytest -q -p no:cacheprovider $(NBVAL) $(NB); \
	done

test-ui: setup-test data
	$(PY) -m pytest tests/ui

# Fresh installs as a new user makes them: Binder's build (binder/) simulated in a new
# virtualenv, and the README's commands for machines without make.
test-install: setup-test data
	$(PY) -m pytest -p no:cacheprovider tests/install

# The lower bounds in pyproject.toml, tested: a second virtualenv with each runtime
# dependency at its declared minimum (.ci/minimums.py), then the unit tests and every
# notebook. Notebooks run with --nbval-lax: numpy 1.x prints some values differently
# from the numpy that wrote the stored outputs, so they are not compared; every
# assert in them still runs.
MIN_VENV := .venv-min
$(MIN_VENV)/.installed: pyproject.toml .ci/minimums.py $(VENV)/.installed-test
	rm -rf $(MIN_VENV)
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip --disable-pip-version-check install \
		$$($(PY) .ci/minimums.py) pytest nbval pyyaml 'tomli; python_version < "3.11"'
	$(MIN_VENV)/bin/python -m pip --disable-pip-version-check install --no-deps -e .
	@touch $@

test-min: $(MIN_VENV)/.installed data
	$(MIN_VENV)/bin/python -m pip freeze | grep -iE "^($$($(PY) .ci/minimums.py | sed 's/==.*//' | paste -sd'|' -))=="
	$(MIN_VENV)/bin/python -m pytest tests --ignore=tests/ui --ignore=tests/install -p no:cacheprovider \
		--nbval-lax --nbval-current-env notebooks

# NB=notebooks/03-backprop-shapes.ipynb re-executes only the notebooks named.
# No widget state is stored (it is 100 KB of ids that change on every run), and no
# per-cell timing metadata: re-running with no code change gives a small diff.
NB ?= notebooks/*.ipynb
notebooks: setup-test data
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.record_timing=False --ExecutePreprocessor.store_widget_state=False \
		$(NB)
	$(PY) .ci/tidy_notebooks.py $(NB)

# A copy of the notebooks for learners: every cell tagged `solution` (notebook 08's
# hidden solutions and the sentences pointing to them) removed; all else, outputs
# included, as committed. Written to $(STUDENT_DIR) (build/ is git-ignored).
STUDENT_DIR ?= build/student
.PHONY: student
student: setup
	$(PY) -m nbconvert --to notebook --output-dir $(STUDENT_DIR) \
		--TagRemovePreprocessor.enabled=True --TagRemovePreprocessor.remove_cell_tags=solution \
		notebooks/*.ipynb

bench: setup data
	$(PY) -m mnistnet.bench

clean:
	rm -rf $(VENV) $(MIN_VENV) $(LOCK_VENV) .pytest_cache build *.egg-info
