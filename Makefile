# Two commands on a fresh machine (Python 3.11, 3.12 or 3.13 + pip + gcc):
#   make demo   compile the bundled example and run it against JAX
#   make test   run every test (pytest, filecheck, CMake/ctest), then pytest and filecheck
#               again on Python 3.12 with its newer jax when a Python 3.12 is found
# Each sets up its own virtual environment from pyproject.toml (the one place where
# versions are pinned, per Python version where they differ).

PYTHON ?= python3
# pip keeps no cache of what it installs: the venvs hold the only copies (disk)
export PIP_NO_CACHE_DIR := 1
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.tracec-installed

.PHONY: demo test venv pytest interop-venvs filecheck ctest test312 venv312 clean bench bench-venv bench-venv-312 parity bench-all bench-quick vulkan-driver aarch64-runtime

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[compiler,test]'
	touch $(STAMP)

# The second interpreter: Python 3.12, where pyproject.toml pins the newest jax. PYTHON312
# if given, else pyenv's 3.12 (the newest patch release), else a python3.12 on PATH that
# runs (a pyenv shim for a version that is not selected does not); empty when none is.
ifeq ($(origin PYTHON312),undefined)
PYTHON312 := $(shell for p in $$(ls -d "$$(pyenv root 2>/dev/null || echo "$${PYENV_ROOT:-$$HOME/.pyenv}")"/versions/3.12*/bin/python3 2>/dev/null | sort -rV) python3.12; do \
  "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1 && { command -v "$$p"; break; }; done)
endif
VENV312  ?= .venv312
PY312    := $(VENV312)/bin/python
STAMP312 := $(VENV312)/.tracec-installed

venv312: $(STAMP312)

$(STAMP312): pyproject.toml
	@[ -n "$(PYTHON312)" ] || { echo "no Python 3.12 found: install one (pyenv install 3.12) or set PYTHON312"; exit 1; }
	$(PYTHON312) -m venv $(VENV312)
	$(PY312) -m pip install -q --upgrade pip
	$(PY312) -m pip install -q -e '.[compiler,test]'
	touch $(STAMP312)

demo: $(STAMP)
	mkdir -p build
	$(VENV)/bin/tracec examples/lif2.py -o build/lif2.vmfb --algorithm forward
	$(PY) examples/run_lif2.py build/lif2.vmfb

pytest: $(STAMP) vulkan-driver aarch64-runtime interop-venvs
	$(PY) -m pytest -q tests

# The optional venvs of the interop tests (snnTorch for NIR, PyTorch + torch-mlir): made
# when their pinned packages install here; where they do not, those tests skip and say why.
# Each holds a PyTorch (about 1 GiB): one is made only while INTEROP_MIN_FREE_MB stay free
# on this disk beside it, so that the Python 3.12 run that follows still has room.
INTEROP_MIN_FREE_MB ?= 4096
FREE_MB = $$(df -Pm . | awk 'NR == 2 { print $$4 }')
interop-venvs:
	@if [ -f $(NIR_STAMP) ] || [ "$(FREE_MB)" -gt $$(( $(INTEROP_MIN_FREE_MB) + 1200 )) ]; then \
	  $(MAKE) --no-print-directory nir-venv >/dev/null 2>&1 || { rm -rf $(NIR_VENV); \
	  echo "could not make $(NIR_VENV) (snnTorch): the snnTorch interop tests will skip"; }; \
	else echo "$(FREE_MB) MB free: not making $(NIR_VENV) (snnTorch): the snnTorch interop tests will skip"; fi
	@if [ -f $(TORCH_STAMP) ] || [ "$(FREE_MB)" -gt $$(( $(INTEROP_MIN_FREE_MB) + 1400 )) ]; then \
	  $(MAKE) --no-print-directory torch-venv >/dev/null 2>&1 || { rm -rf $(TORCH_VENV); \
	  echo "could not make $(TORCH_VENV) (torch-mlir): the torch-mlir tests will skip"; }; \
	else echo "$(FREE_MB) MB free: not making $(TORCH_VENV) (torch-mlir): the torch-mlir tests will skip"; fi

# A Vulkan device on the CPU (Mesa's lavapipe) for tests/test_vulkan.py, installed with apt
# when running as root; elsewhere those tests skip and say why.
vulkan-driver:
	@if ! ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
	    && command -v apt-get >/dev/null; then \
	  echo "installing mesa-vulkan-drivers (lavapipe) for the Vulkan tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    mesa-vulkan-drivers libvulkan1) >/dev/null 2>&1 \
	    || echo "could not install mesa-vulkan-drivers: the Vulkan tests will skip"; \
	fi

# An aarch64 board on this machine for tests/test_deploy.py: qemu-user and Debian's arm64 C
# and C++ runtime libraries (installed with apt when running as root), and the aarch64
# iree-run-module of the installed iree-base-runtime version, taken from its wheel into
# build/aarch64-runtime; without them those tests skip and say why.
AARCH64_RUNTIME := build/aarch64-runtime
aarch64-runtime: $(STAMP)
	@if { ! command -v qemu-aarch64 >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ]; } \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing qemu-user and the arm64 C/C++ runtime libraries for the aarch64 tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user \
	    libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross) >/dev/null 2>&1 \
	    || echo "could not install qemu-user: the aarch64 tests will skip"; \
	fi
	@if [ ! -x $(AARCH64_RUNTIME)/iree-run-module ]; then \
	  echo "fetching the aarch64 iree-run-module (iree-base-runtime wheel) into $(AARCH64_RUNTIME)"; \
	  rm -rf $(AARCH64_RUNTIME)/wheel && mkdir -p $(AARCH64_RUNTIME)/wheel \
	  && $(PY) -m pip download -q --platform manylinux_2_28_aarch64 --only-binary=:all: --no-deps \
	    -d $(AARCH64_RUNTIME)/wheel "iree-base-runtime==$$($(PY) -c \
	    'from importlib.metadata import version; print(version("iree-base-runtime"))')" \
	    >/dev/null 2>&1 \
	  && $(PY) -c 'import glob, os, sys, zipfile; d = sys.argv[1]; \
	    w = zipfile.ZipFile(glob.glob(d + "/wheel/*.whl")[0]); \
	    open(d + "/iree-run-module.tmp", "wb").write(w.read("iree/_runtime_libs/iree-run-module")); \
	    os.chmod(d + "/iree-run-module.tmp", 0o755); \
	    os.replace(d + "/iree-run-module.tmp", d + "/iree-run-module")' $(AARCH64_RUNTIME) \
	  || echo "could not fetch the aarch64 iree-run-module: the aarch64 tests will skip"; \
	  rm -rf $(AARCH64_RUNTIME)/wheel; \
	fi

filecheck: $(STAMP)
	$(VENV)/bin/lit -v tests/filecheck

ctest: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" cmake -S . -B build/cmake -DPython3_EXECUTABLE=$(abspath $(PY))
	PATH="$(abspath $(VENV))/bin:$$PATH" cmake --build build/cmake
	PATH="$(abspath $(VENV))/bin:$$PATH" ctest --test-dir build/cmake --output-on-failure

# filecheck and pytest again on Python 3.12 (jax 0.12 there), in its own venv; skipped, and
# said so, where no Python 3.12 is found or the main venv is already 3.12. PYTEST312_ARGS
# narrows that pytest run if ever needed (default: every test).
PYTEST312_ARGS ?= tests
ifeq ($(PYTHON312),)
test312:
	@echo "skipping the Python 3.12 run: no Python 3.12 found (pyenv's versions/3.12*, python3.12 on PATH, or PYTHON312=...)"
else
test312: $(STAMP312)
	@if [ -x $(PY) ] && $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then \
	  echo "skipping the second Python 3.12 run: $(VENV) is already Python 3.12"; \
	else \
	  echo "== Python 3.12 ($(PYTHON312)): filecheck and pytest" \
	  && $(VENV312)/bin/lit -v tests/filecheck && $(PY312) -m pytest -q $(PYTEST312_ARGS); \
	fi
endif

test: filecheck pytest ctest test312

bench: $(STAMP)
	$(PY) -m benchmarks.forward_sequence

# braintrace (the incumbent library) for the side-by-side benchmarks only: its own venv,
# so tracec's pins stay untouched; benchmarks/braintrace_side.py runs there.
BENCH_VENV  ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.braintrace-installed

bench-venv: $(BENCH_STAMP)

$(BENCH_STAMP): benchmarks/requirements-braintrace.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -r benchmarks/requirements-braintrace.txt
	touch $(BENCH_STAMP)

# braintrace's newest release (0.2.7+ need Python >= 3.12) beside 0.2.6: a second benchmark
# venv on Python 3.12 (BENCH_PYTHON312; default python3.12), pinned in its own requirements
# file. The side-by-side runner and make parity use every benchmark venv that exists.
BENCH_PYTHON312 ?= $(or $(PYTHON312),python3.12)
BENCH_VENV312   ?= .venv-bench312
BENCH312_STAMP  := $(BENCH_VENV312)/.braintrace-installed

bench-venv-312: $(BENCH312_STAMP)

$(BENCH312_STAMP): benchmarks/requirements-braintrace-312.txt
	$(BENCH_PYTHON312) -m venv $(BENCH_VENV312)
	$(BENCH_VENV312)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV312)/bin/python -m pip install -q -r benchmarks/requirements-braintrace-312.txt
	touch $(BENCH312_STAMP)

# PyTorch + torch-mlir for examples/torch (a PyTorch step exported to StableHLO) and
# tests/test_torch_mlir.py: its own venv on Python 3.11 (torch-mlir's one wheel is cp311),
# pinned in examples/torch/requirements.txt; without it that test skips and says why.
TORCH_PYTHON ?= python3.11
TORCH_VENV   ?= .venv-torch
TORCH_STAMP  := $(TORCH_VENV)/.torch-mlir-installed

.PHONY: torch-venv
torch-venv: $(TORCH_STAMP)

$(TORCH_STAMP): examples/torch/requirements.txt
	$(TORCH_PYTHON) -m venv $(TORCH_VENV)
	echo '*' > $(TORCH_VENV)/.gitignore
	$(TORCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(TORCH_VENV)/bin/python -m pip install -q -r examples/torch/requirements.txt
	touch $(TORCH_STAMP)

# tracec's D-RTRL / ES-D-RTRL gradients vs braintrace's on the same networks
parity: $(STAMP) $(BENCH_STAMP)
	$(PY) -m benchmarks.braintrace_parity

# The side-by-side runner: tracec vs braintrace vs JAX BPTT (time, compile, memory;
# BENCH_ARGS=--accuracy adds the learning curves). braintrace's columns and the PNGs need
# the benchmark venv (make bench-venv); without it they are skipped.
BENCH_ARGS ?=
bench-all: $(STAMP)
	$(PY) -m benchmarks.side_by_side $(BENCH_ARGS)

bench-quick: $(STAMP)
	$(PY) -m benchmarks.side_by_side --quick --accuracy $(BENCH_ARGS)

# snnTorch in its own venv, the independent NIR producer/consumer of tests/test_nir.py
# (pinned in examples/nir/requirements-nir-interop.txt); without it those two tests skip.
NIR_VENV  ?= .venv-nir
NIR_STAMP := $(NIR_VENV)/.tracec-installed
.PHONY: nir-venv
nir-venv: $(NIR_STAMP)

$(NIR_STAMP): examples/nir/requirements-nir-interop.txt
	$(PYTHON) -m venv $(NIR_VENV)
	echo '*' > $(NIR_VENV)/.gitignore   # git ignores the venv whatever .gitignore says
	$(NIR_VENV)/bin/python -m pip install -q --upgrade pip
	$(NIR_VENV)/bin/python -m pip install -q -r examples/nir/requirements-nir-interop.txt
	touch $(NIR_STAMP)

clean:
	rm -rf build .cache
