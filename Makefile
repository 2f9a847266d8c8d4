# The course's commands. A newcomer needs two: `make lab` and `make test`.
# Each target calls course.py, which does the work on every OS (Windows: `py course.py lab`).
# Everything runs in .venv, created from pyproject.toml the first time it is needed.

PYTHON ?= python3
COURSE := $(PYTHON) course.py
# oneDNN off by default (the course's reference numerics); `make test ONEDNN=on` for the other.
ONEDNN ?= off
LAB_ARGS ?=
PYTEST_ARGS ?=
NOTEBOOKS ?=
WHEELHOUSE_ARGS ?=

.PHONY: help venv lab test nbtest workshop-test notebooks student doctor platforms wheelhouse site site-test bench bench-course clean

help:
	@$(COURSE) --help

venv:
	$(COURSE) setup

lab:
	$(COURSE) lab --onednn $(ONEDNN) $(LAB_ARGS)

# Unit tests, then the notebooks; both always run, and either failing fails the target.
test:
	$(COURSE) test --onednn $(ONEDNN) $(PYTEST_ARGS)

nbtest:
	$(COURSE) nbtest --onednn $(ONEDNN) $(PYTEST_ARGS)

# The instructor guide's workshop plans, each part's taught sections alone (CI runs it).
workshop-test:
	$(COURSE) workshop-test --onednn $(ONEDNN) $(PYTEST_ARGS)

notebooks:
	$(COURSE) notebooks --onednn $(ONEDNN) $(NOTEBOOKS)

# The learner editions (notebooks/learner/, answers replaced by placeholders) and the solutions.
student:
	$(COURSE) student

doctor:
	$(COURSE) doctor

# Needs the package registry: the dependency matrix, a Colab-like venv, an offline wheelhouse.
platforms:
	$(COURSE) platforms $(PYTEST_ARGS)

wheelhouse:
	$(COURSE) wheelhouse $(WHEELHOUSE_ARGS)

# The course as a website in build/site/ (offline; installs the `site` extra on first use),
# and its test in Debian's chromium.
site:
	$(COURSE) site

site-test:
	$(COURSE) site-test $(PYTEST_ARGS)

bench:
	$(COURSE) bench

bench-course:
	$(COURSE) bench --course

# Opt-in, needs root and the network for set-up: Debian 13 via debootstrap, under build/.
.PHONY: test-py313
test-py313:
	$(COURSE) test-py313

clean:
	$(COURSE) clean
