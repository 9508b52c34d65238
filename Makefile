# Quick start:  make demo   (the main job)   make test   (the whole test suite)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# ANNarchy's cmake calls the first python3 on PATH: the venv's.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test fuzz bench clean

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

# The tests run the real simulators: they are installed here.
$(VENV)/.test: $(VENV)/.core $(VENV)/.toolchain
	$(PIP) install -q -e '.[test,brian2,annarchy,nest,mpi]'
	touch $@

demo: $(VENV)/.core
	$(PY) examples/demo.py

test: $(VENV)/.test
	$(PY) -m pytest -n 2 --dist loadfile -q

# Many more fuzz cases than make test runs, with a random seed; prints what they ended in.
FUZZ_EXAMPLES ?= 1000
fuzz: $(VENV)/.test
	FUZZ_SEED=random FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -s -q tests/test_fuzz.py

bench: $(VENV)/.test
	$(PY) benchmarks/bench_formats.py
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
	rm -rf $(VENV) demo-output .pytest_cache .hypothesis
