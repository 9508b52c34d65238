# Quick start:  make demo   (the main job)   make test   (the whole test suite)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# ANNarchy's cmake calls the first python3 on PATH: the venv's.
export PATH := $(abspath $(VENV))/bin:$(PATH)
# NEST built with MPI (.nest-mpi) links the mpich wheel's libmpi.so.12, which
# lives in the venv's lib/ and not on the loader's path: without this,
# `import nest` fails with "libmpi.so.12: cannot open shared object file".
export LD_LIBRARY_PATH := $(abspath $(VENV))/lib$(if $(LD_LIBRARY_PATH),:$(LD_LIBRARY_PATH))

.PHONY: demo test lint test-brian2-matrix docs fuzz bench clean example-izhikevich example-brian2 example-annarchy example-nest example-neuron example-mpi

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.core: $(PY) setup.cfg pyproject.toml
	$(PIP) install -q -e '.[progress,plot]'
	touch $@

# ANNarchy builds from source and compiles every network with g++ and cmake.
$(VENV)/.toolchain: $(PY)
	command -v g++ >/dev/null && command -v cmake >/dev/null || \
	  (apt-get update -q && apt-get install -y -q g++ cmake)
	touch $@

# One stamp per simulator extra, so that an example installs only its own.
$(VENV)/.brian2: $(VENV)/.core
	$(PIP) install -q -e '.[brian2]'
	touch $@
$(VENV)/.annarchy: $(VENV)/.core $(VENV)/.toolchain
	$(PIP) install -q -e '.[annarchy]'
	touch $@
$(VENV)/.nest: $(VENV)/.core
	$(PIP) install -q -e '.[nest]'
	touch $@
$(VENV)/.neuron: $(VENV)/.core
	$(PIP) install -q -e '.[neuron]'
	touch $@
$(VENV)/.mpi: $(VENV)/.core
	$(PIP) install -q -e '.[mpi]'
	touch $@

# NEST built from source with MPI (the PyPI wheel has none), for the tests
# of NEST under mpiexec: about 11 minutes on two cores, once (pip caches the
# wheel).  GSL: NEST's aeif_*, hh_* and gif_* models need it (the wheel has it).
NEST_VERSION ?= 3.10.0
$(VENV)/.nest-mpi: $(VENV)/.mpi $(VENV)/.toolchain
	test -f /usr/include/gsl/gsl_errno.h || (apt-get update -q && apt-get install -y -q libgsl-dev)
	$(PY) -c "import nest, sys; sys.exit(0 if nest.build_info['have_mpi'] else 1)" >/dev/null 2>&1 || \
	  $(PIP) install -q --force-reinstall --no-deps --no-binary nest-simulator 'nest-simulator==$(NEST_VERSION)' \
	    -C cmake.define.with-mpi=ON -C cmake.define.with-boost=OFF -C cmake.define.with-gsl=ON
	touch $(VENV)/.nest $@

# NEST's SonataNetwork (tests/test_interchange.py) needs a NEST built with
# HDF5 and, in the same process, h5py built against the same HDF5 library
# (h5py's wheel brings its own, and `import nest` then fails): an environment
# of its own, used by the tests in a subprocess, with a NEST of the few models
# they use (NEST_SONATA_MODELS) so that it builds in minutes, not 20.
NEST_SONATA := $(VENV)/nest-sonata
NEST_SONATA_MODELS ?= iaf_psc_alpha;iaf_psc_exp;poisson_generator;dc_generator;spike_generator;spike_recorder;static_synapse;stdp_synapse;multimeter;weight_recorder;spike_train_injector
export CHECKPOINT_NEST_SONATA_PYTHON := $(abspath $(NEST_SONATA))/bin/python
$(VENV)/.nest-sonata: $(PY) $(VENV)/.toolchain
	test -f /usr/include/hdf5/serial/hdf5.h || (apt-get update -q && apt-get install -y -q libhdf5-dev)
	test -x $(NEST_SONATA)/bin/python || $(PYTHON) -m venv $(NEST_SONATA)
	$(NEST_SONATA)/bin/pip install -q numpy scipy xxhash pandas
	$(NEST_SONATA)/bin/pip install -q --no-binary h5py h5py
	$(NEST_SONATA)/bin/python -c "import nest, sys; sys.exit(0 if nest.build_info['have_hdf5'] else 1)" >/dev/null 2>&1 || \
	  $(NEST_SONATA)/bin/pip install -q --no-cache-dir --no-deps --no-binary nest-simulator 'nest-simulator==$(NEST_VERSION)' \
	    -C cmake.define.with-hdf5=ON -C cmake.define.with-mpi=OFF -C cmake.define.with-boost=OFF \
	    -C cmake.define.with-gsl=OFF -C 'cmake.define.with-models=$(NEST_SONATA_MODELS)'
	touch $@

# The tests run the real simulators: they are installed here.
$(VENV)/.test: $(VENV)/.core $(VENV)/.toolchain
	$(PIP) install -q -e '.[test,brian2,annarchy,mpi,neuron,sonata,neuroml,nwb]'
	$(MAKE) $(VENV)/.nest-mpi
	$(MAKE) $(VENV)/.nest-sonata
	touch $(VENV)/.brian2 $(VENV)/.annarchy $(VENV)/.mpi $(VENV)/.neuron $(VENV)/.docs $@

demo: $(VENV)/.core
	$(PY) examples/demo.py

# The examples, as the README shows them; ARGS passes options, e.g.
#   make example-annarchy ARGS="--duration-ms 500"
# Run one again after stopping it (Ctrl-C) and it resumes.
MPI_RANKS ?= 2
example-izhikevich: $(VENV)/.core
	$(PY) examples/izhikevich_stdp.py $(ARGS)
example-brian2: $(VENV)/.brian2
	$(PY) examples/brian2_stdp.py $(ARGS)
example-annarchy: $(VENV)/.annarchy
	$(PY) examples/annarchy_stdp.py $(ARGS)
example-nest: $(VENV)/.nest
	$(PY) examples/nest_stdp.py $(ARGS)
example-neuron: $(VENV)/.neuron
	$(PY) examples/neuron_ring.py $(ARGS)
example-mpi: $(VENV)/.mpi
	$(VENV)/bin/mpiexec -n $(MPI_RANKS) $(PY) examples/mpi_izhikevich.py $(ARGS)

# NEST cannot share a process with ANNarchy or Brian2 (the interpreter crashes),
# so its tests run in a pytest of their own, after the rest.  Nor can NEURON
# share one with ANNarchy: importing neuron puts its global `t` and `dt` in the
# process's symbol scope, where every ANNarchy library loaded later finds its own
# `t` and `dt` (a pytest worker that ran the NEURON tests crashed in ANNarchy's).
# ANNarchy's two test files, which compile dozens of networks into one process,
# get fresh workers too: in a worker that had run other files first, ANNarchy
# segfaulted in its own compile() (cause not found; each file passes on its own).
ANNARCHY_TESTS := tests/test_annarchy.py tests/test_annarchy_coverage.py
test: $(VENV)/.test lint
	$(PY) -m pytest -n 2 --dist loadfile -q --ignore=tests/test_nest.py --ignore=tests/test_nest_mpi.py \
	  --ignore=tests/test_neuron.py $(ANNARCHY_TESTS:%=--ignore=%)
	$(PY) -m pytest -n 2 --dist loadfile -q $(ANNARCHY_TESTS)
	$(PY) -m pytest -n 2 -q tests/test_neuron.py
	$(PY) -m pytest -q tests/test_nest.py tests/test_nest_mpi.py
	$(MAKE) test-brian2-matrix

# Brian2's current releases need a newer Python than the main venv's (which
# keeps Brian2 2.9.0, beside ANNarchy and NEST): the Brian2 tests run again,
# unchanged, in a venv per release.  BRIAN2_MATRIX lists python:brian2 pairs.
# PYTHON312/PYTHON313 may name the interpreters; otherwise each is looked for
# as python3.1x on PATH, then under `pyenv root`, then ~/.pyenv.  The main
# venv (Brian2 2.9.0) is the other side of the live exchange test
# (tests/test_brian2_versions.py, BRIAN2_OTHER_PYTHON).
# make test runs both current releases (about 4 minutes each on CI's machine, venv included)
BRIAN2_MATRIX ?= 3.13:2.11.0 3.12:2.10.1
BRIAN2_TESTS  := tests/test_brian2.py tests/test_brian2_coverage.py tests/test_brian2_versions.py \
  'tests/test_recordings.py::test_killed_and_resumed_run_records_what_a_straight_run_does[brian2-numpy]' \
  tests/test_recordings.py::test_brian2_cython_killed_and_resumed
PYTHON312 ?=
PYTHON313 ?=
export PYTHON312 PYTHON313
# the first interpreter of version $$py that runs
FIND_PYTHON = eval given=\$${PYTHON$$(echo $$py | tr -d .)}; \
  for p in "$$given" "$$(command -v python$$py)" $$(pyenv root 2>/dev/null)/versions/$$py.*/bin/python \
           $$HOME/.pyenv/versions/$$py.*/bin/python; do \
    [ -n "$$p" ] && [ -x "$$p" ] && "$$p" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$$py'" 2>/dev/null \
      && { interpreter=$$p; break; }; \
  done

test-brian2-matrix: $(VENV)/.brian2
	@for pair in $(BRIAN2_MATRIX); do \
	  py=$${pair%%:*}; brian=$${pair##*:}; venv=.venv-py$$(echo $$py | tr -d .); interpreter=; \
	  $(FIND_PYTHON); \
	  test -n "$$interpreter" || { echo "make: Python $$py not found (Brian2 $$brian needs it): install it" \
	    "(e.g. pyenv install $$py) or pass PYTHON$$(echo $$py | tr -d .)=/path/to/python$$py"; exit 1; }; \
	  if [ ! -f $$venv/.brian2-$$brian ]; then \
	    rm -rf $$venv && $$interpreter -m venv $$venv && $$venv/bin/python -m pip install -q --upgrade pip && \
	    $$venv/bin/python -m pip install -q -e '.[test,brian2]' "brian2==$$brian" && touch $$venv/.brian2-$$brian \
	    || exit 1; \
	  fi; \
	  echo "== Brian2 $$brian on Python $$py ($$venv, $$interpreter)"; \
	  BRIAN2_OTHER_PYTHON=$(abspath $(PY)) $$venv/bin/python -m pytest -n 2 --dist loadfile -q $(BRIAN2_TESTS) \
	    || exit 1; \
	done

# ruff (pyproject.toml [tool.ruff]) over everything, its formatter's layout, mypy over the package ([tool.mypy]).
lint: $(VENV)/.test
	$(PY) -m ruff check -q .
	$(PY) -m ruff format --check -q .
	$(PY) -m mypy

# The documentation (Sphinx); warnings are errors, as in tests/test_docs.py.
$(VENV)/.docs: $(VENV)/.core
	$(PIP) install -q -e '.[docs]'
	touch $@
docs: $(VENV)/.docs
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs/_build/html/index.html"

# Many more fuzz cases than make test runs, with a random seed; prints what they ended in.
FUZZ_EXAMPLES ?= 1000
fuzz: $(VENV)/.test
	FUZZ_SEED=random FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -s -q tests/test_fuzz.py

bench: $(VENV)/.test
	$(PY) benchmarks/bench_formats.py
	$(PY) benchmarks/bench_coldread.py --warm
	$(PY) benchmarks/bench_writeback.py
	$(PY) benchmarks/bench_pause.py
	$(PY) benchmarks/bench_lazy.py
	$(PY) benchmarks/bench_compression.py
	$(PY) benchmarks/bench_scaling.py --plot docs/scaling.png --csv scaling.csv
	$(PIP) install -q -e '.[brian2]'
	$(PY) benchmarks/bench_brian2.py
	$(PY) benchmarks/bench_annarchy.py
	$(PY) benchmarks/bench_nest.py

clean:
	rm -rf $(VENV) .venv-py3* demo-output docs/_build .pytest_cache .hypothesis
