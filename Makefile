# Two commands on a fresh machine (Python 3.11 + pip + gcc):
#   make demo   compile the bundled example and run it against JAX
#   make test   run every test (pytest, filecheck, CMake/ctest)
# Each sets up its own virtual environment from pyproject.toml (the one place where
# versions are pinned).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.tracec-installed

.PHONY: demo test venv pytest filecheck ctest clean bench bench-venv parity bench-all bench-quick vulkan-driver aarch64-runtime

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p build
	$(VENV)/bin/tracec examples/lif2.py -o build/lif2.vmfb --algorithm forward
	$(PY) examples/run_lif2.py build/lif2.vmfb

pytest: $(STAMP) vulkan-driver aarch64-runtime
	$(PY) -m pytest -q tests

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

test: filecheck pytest ctest

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

clean:
	rm -rf build .cache
