# The course's commands. A newcomer needs two: `make lab` and `make test`.
# Everything runs in .venv, created from pyproject.toml the first time it is needed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# No TensorFlow start-up lines in notebook outputs, and the same numerics on every CPU.
export TF_ENABLE_ONEDNN_OPTS := 0
export TF_CPP_MIN_LOG_LEVEL  := 3
export PYTHONHASHSEED        := 0

LAB_ARGS ?=
# Containers often run as root, where Jupyter refuses to start without this flag.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
PYTEST_ARGS ?=

.PHONY: help venv lab test nbtest notebooks bench bench-course clean

help:
	@echo "make lab        start JupyterLab on notebooks/00_start_here.ipynb (sets up .venv first)"
	@echo "make test       unit tests, then every notebook under nbval (sets up .venv first)"
	@echo "make notebooks  re-execute every notebook in place, in order"
	@echo "make bench      run the benchmark suite and write docs/benchmarks.md"
	@echo "make bench-course  time every notebook and make test (slow), then rewrite docs/benchmarks.md"
	@echo "make test-py313  (opt-in, root) unit tests and notebooks 01-03 on Debian 13's Python 3.13 in a chroot"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

venv: $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/00_start_here.ipynb $(ROOT_FLAG) $(LAB_ARGS)

# Unit tests, then the notebooks; both always run, and either failing fails the target.
test: $(STAMP)
	@status=0; \
	$(PY) -m pytest tests $(PYTEST_ARGS) || status=1; \
	$(MAKE) --no-print-directory nbtest || status=1; \
	exit $$status

nbtest: $(STAMP)
	$(PY) -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=600 \
		-p no:cacheprovider notebooks $(PYTEST_ARGS)

notebooks: $(STAMP)
	$(PY) tools/run_notebooks.py $(NOTEBOOKS)

bench: $(STAMP)
	$(PY) -m benchmarks

bench-course: $(STAMP)
	$(PY) -m benchmarks --skip-models --course --make-test

# Opt-in, needs root and the network for set-up: Debian 13 via debootstrap, under build/.
.PHONY: test-py313
test-py313:
	tools/py313_chroot.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
