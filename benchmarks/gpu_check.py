"""The GPU check behind benchmarks/gpu_check.sh: tracec on an NVIDIA GPU through IREE's
CUDA driver, against llvm-cpu.

    python -m benchmarks.gpu_check [--arch sm_90] [--sizes 64,256,1024] [--T 32]

1. A CUDA device: IREE's ``cuda`` driver must load (it needs the NVIDIA driver's
   libcuda.so) and list a device; otherwise "no CUDA device: ..." and exit status 2.
2. Correctness: examples/lif2.py compiled for ``--target cuda`` and for llvm-cpu,
   forward and both learning rules (d-rtrl, es-d-rtrl; Adam, an update every 2nd step),
   run through ``tracec.runtime`` (the cuda artifact on driver ``cuda``): forward,
   forward_sequence, train_step, train_sequence, then every parameter and trace, equal
   to 1e-4 of the larger magnitude (as tests/test_vulkan.py for Vulkan).
3. Timing: ``train_sequence`` of the benchmark network (benchmarks/networks.py, two
   layers of H LIF neurons, batch 32) at each H, both rules, on the GPU and on the CPU
   (local-sync, one thread, the runtime's default; and local-task, all cores): medians
   of --repeats calls after a warm-up call (which also JIT-compiles the PTX).

Writes the tables to --out (default benchmarks/results/gpu_check.md) and exits 1 if a
comparison failed or a run raised. ``--accel vulkan`` runs the same check on a Vulkan
device (lavapipe where there is no GPU), to try the script itself on any machine.

IREE 3.13 and Hopper (H100/H200, sm_90): iree-compile 3.13.0's --help names sm_90 as an
example of --iree-cuda-target, but its table of known NVIDIA targets (the workgroup
limits and MMA intrinsics code generation needs) ends at Ada: sm_60..sm_89, and the names
'pascal', 'volta', 'turing', 'ampere', 'ada', 'a100', 'rtx30xx', 'rtx40xx'. For sm_90 and
sm_90a it stops with "missing GPU target in #hal.executable.target"; 'hopper' and 'h100'
are unknown names (all checked with iree-compile 3.13.0 on examples/lif2.py). The
artifact embeds PTX, not a cubin (no --iree-cuda-use-ptxas), and the CUDA driver
JIT-compiles PTX for the GPU it runs on, so code for sm_80 runs on sm_90: when the asked
architecture is refused this way the check compiles for --fallback-arch (sm_80) and says
so. (No Hopper-specific instructions, e.g. wgmma, are then used.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import traceback

import numpy as np

from benchmarks.common import ROOT, write_text

LIF2 = os.path.join(ROOT, "examples", "lif2.py")
LEARN = dict(optimizer="adam", lr=0.01, update_every=2)
ALGORITHMS = ("d-rtrl", "es-d-rtrl")
TOLERANCE = 1e-4
MAX_CELL_S = 20.0
#: iree-compile's words for an --iree-cuda-target it has no target details for
_UNSUPPORTED_ARCH = ("missing GPU target", "Unknown CUDA target")


def device_or_none(driver: str) -> tuple[str | None, str]:
    """(a description of the first device of IREE driver ``driver``, or None; why not)."""
    import iree.runtime as rt

    try:
        devices = rt.get_driver(driver).query_available_devices()
    except (RuntimeError, ValueError) as e:
        return None, str(e).strip().splitlines()[-1][:300]
    if not devices:
        return None, f"IREE's {driver} driver loads but lists no device"
    try:
        rt.Config(driver)  # what tracec.runtime does: create the default device
    except (RuntimeError, ValueError) as e:
        return None, f"IREE cannot create a {driver} device: {str(e).strip().splitlines()[-1][:300]}"
    first = devices[0]
    name = first.get("name") if isinstance(first, dict) else str(first)
    return f"{name} ({len(devices)} device{'s' if len(devices) > 1 else ''})", ""


class Compiler:
    """Compiles models for the accelerator and for llvm-cpu into a folder; remembers the
    CUDA architecture IREE accepted."""

    def __init__(self, folder: str, accel: str, arch: str, fallback_arch: str):
        self.folder, self.accel = folder, accel
        self.arch, self.fallback_arch = arch, fallback_arch
        self.notes: list[str] = []
        self.compile_s: dict[str, float] = {}

    def __call__(self, model, name: str, target: str, **options) -> str:
        import tracec
        from tracec.diagnostics import TracecError

        path = os.path.join(self.folder, f"{name}-{target}.vmfb")
        if os.path.exists(path):
            return path  # the same name is the same model and options
        if target == "cuda":
            options["cuda_arch"] = self.arch
        t0 = time.perf_counter()
        try:
            art = tracec.compile(model, target=target, **options)
        except TracecError as e:
            if target != "cuda" or self.arch == self.fallback_arch \
                    or not any(s in str(e) for s in _UNSUPPORTED_ARCH):
                raise
            self.notes.append(f"IREE {_iree_version()} refuses --cuda-arch {self.arch} "
                              f"({str(e).splitlines()[0][:160]}); compiled for "
                              f"{self.fallback_arch} instead (PTX, JIT-compiled by the CUDA "
                              "driver for this GPU)")
            print(f"note: {self.notes[-1]}", flush=True)
            self.arch = options["cuda_arch"] = self.fallback_arch
            art = tracec.compile(model, target=target, **options)
        self.compile_s[f"{name}-{target}"] = time.perf_counter() - t0
        art.save(path)
        return path


def _iree_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("iree-base-compiler")
    except PackageNotFoundError:
        return "?"


def _err(a, b) -> float:
    """max |a - b| relative to max(1, max |a|)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    return float(np.abs(a - b).max() / max(1.0, float(np.abs(a).max())))


def check_correctness(compile_, accel: str, T: int) -> list[tuple[str, str, float]]:
    """(algorithm, what, relative error) of the accelerator against llvm-cpu."""
    import tracec.runtime

    rows = []
    rng = np.random.default_rng(0)
    xs = (rng.random((T, 32, 40)) < 0.3).astype(np.float32)
    targets = rng.integers(0, 10, (T, 32)).astype(np.int32)
    for algorithm in ("forward",) + ALGORITHMS:
        options = dict(algorithm=algorithm, **({} if algorithm == "forward" else LEARN))
        cpu = tracec.runtime.load(compile_(LIF2, f"lif2-{algorithm}", "llvm-cpu", **options))
        acc = tracec.runtime.load(compile_(LIF2, f"lif2-{algorithm}", accel, **options))
        driver = acc._exec.driver
        assert driver == {"cuda": "cuda", "vulkan": "vulkan"}[accel], driver
        rows.append((algorithm, "forward", _err(cpu.forward(xs[0]), acc.forward(xs[0]))))
        rows.append((algorithm, "forward_sequence",
                     _err(cpu.forward_sequence(xs), acc.forward_sequence(xs))))
        if algorithm == "forward":
            continue
        cpu.reset()
        acc.reset()
        (loss_c, out_c), (loss_a, out_a) = cpu.train_step(xs[0], targets[0]), acc.train_step(xs[0], targets[0])
        rows.append((algorithm, "train_step loss", _err(loss_c, loss_a)))
        rows.append((algorithm, "train_step output", _err(out_c, out_a)))
        rows.append((algorithm, "train_sequence losses",
                     _err(cpu.train_sequence(xs, targets), acc.train_sequence(xs, targets))))
        for what in ("params", "traces", "state"):
            a, b = getattr(cpu, what), getattr(acc, what)
            rows.append((algorithm, f"{what} (max over {len(a)})",
                         max((_err(a[k], b[k]) for k in a), default=0.0)))
    return rows


def time_train_sequence(compile_, accel: str, sizes, T: int, repeats: int):
    """Rows (H, algorithm, {column: median µs/step or an error string})."""
    import tracec.runtime
    from benchmarks.networks import make_model

    rng = np.random.default_rng(1)
    xs = (rng.random((T, 32, 40)) < 0.2).astype(np.float32)
    targets = rng.integers(0, 10, (T, 32)).astype(np.int32)
    rows = []
    for H in sizes:
        model = make_model(H)
        for algorithm in ALGORITHMS:
            cells = {}
            for column, target, driver in ((accel, accel, None),
                                           ("cpu local-sync", "llvm-cpu", "local-sync"),
                                           ("cpu local-task", "llvm-cpu", "local-task")):
                try:
                    path = compile_(model, f"H{H}-{algorithm}", target, algorithm=algorithm, **LEARN)
                    learner = tracec.runtime.load(path, driver=driver)
                    t0 = time.perf_counter()
                    learner.train_sequence(xs, targets)  # warm-up (and the PTX JIT)
                    warm = time.perf_counter() - t0
                    runs = []
                    # at most ~MAX_CELL_S of timed calls per cell (D-RTRL at H=1024 on
                    # one CPU thread takes seconds per call)
                    for _ in range(max(1, min(repeats, int(MAX_CELL_S / max(warm, 1e-9))))):
                        t0 = time.perf_counter()
                        learner.train_sequence(xs, targets)
                        runs.append(time.perf_counter() - t0)
                    cells[column] = statistics.median(runs) / T * 1e6
                except Exception as e:  # one cell's failure is reported, the rest still run
                    cells[column] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
                    traceback.print_exc()
                print(f"  H={H} {algorithm} {column}: {_cell(cells[column])}", flush=True)
            rows.append((H, algorithm, cells))
    return rows


def _cell(v) -> str:
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accel", choices=("cuda", "vulkan"), default="cuda",
                    help="the accelerator's tracec target (default: %(default)s)")
    ap.add_argument("--arch", default="sm_90", help="--cuda-arch to ask for (default: %(default)s)")
    ap.add_argument("--fallback-arch", default="sm_80",
                    help="--cuda-arch used when IREE has no target details for --arch "
                         "(default: %(default)s)")
    ap.add_argument("--sizes", default="64,256,1024", help="H values to time (default: %(default)s)")
    ap.add_argument("--T", type=int, default=32, help="time steps per train_sequence call (default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per cell (default: %(default)s)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "gpu_check.md"),
                    help="where the tables go (default: %(default)s)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]

    device, why = device_or_none(args.accel)
    if device is None:
        print(f"no {args.accel.upper() if args.accel == 'cuda' else 'Vulkan'} device: {why}",
              file=sys.stderr)
        return 2
    print(f"device: {device} (IREE driver {args.accel})", flush=True)

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tracec-gpu-check-") as folder:
        compile_ = Compiler(folder, args.accel, args.arch, args.fallback_arch)
        try:
            correctness = check_correctness(compile_, args.accel, args.T)
        except Exception:
            traceback.print_exc()
            print("the correctness check raised (above)", file=sys.stderr)
            return 1
        bad = [r for r in correctness if not r[2] <= TOLERANCE]
        for algorithm, what, err in correctness:
            print(f"  {algorithm:10s} {what:28s} {err:.2e}{'  MISMATCH' if err > TOLERANCE else ''}")
        timing = time_train_sequence(compile_, args.accel, sizes, args.T, args.repeats)
        arch = compile_.arch
        notes = compile_.notes
    failed = [r for r in timing if any(isinstance(v, str) for v in r[2].values())]

    cols = [args.accel, "cpu local-sync", "cpu local-task"]
    lines = [f"# tracec on {args.accel}: {device}", "",
             f"Command: `python -m benchmarks.gpu_check --accel {args.accel} "
             + (f"--arch {args.arch} " if args.accel == "cuda" else "")
             + f"--sizes {args.sizes} --T {args.T} --repeats {args.repeats}` "
             f"({time.perf_counter() - t_start:.0f} s; IREE {_iree_version()}"
             + (f", --cuda-arch {arch}" if args.accel == "cuda" else "") + ")", ""]
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    lines += [f"## {args.accel} vs llvm-cpu (examples/lif2.py, T={args.T}; relative error, "
              f"tolerance {TOLERANCE:g})", "", "| algorithm | what | max relative error |",
              "|---|---|---|"]
    lines += [f"| {a} | {w} | {e:.2e}{' **MISMATCH**' if e > TOLERANCE else ''} |"
              for a, w, e in correctness]
    lines += ["", f"## train_sequence, µs per step (batch 32, T={args.T}, median of "
              f"{args.repeats} after a warm-up; fewer where a call takes over "
              f"{MAX_CELL_S / args.repeats:.0f} s)", "",
              "| H | algorithm | " + " | ".join(cols) + f" | {args.accel} speed-up vs local-task |",
              "|---|---|" + "---|" * (len(cols) + 1)]
    for H, algorithm, cells in timing:
        acc, task = cells.get(args.accel), cells.get("cpu local-task")
        ratio = f"{task / acc:.2f}×" if isinstance(acc, float) and isinstance(task, float) else "–"
        lines.append(f"| {H} | {algorithm} | " + " | ".join(_cell(cells.get(c)) for c in cols)
                     + f" | {ratio} |")
    text = "\n".join(lines) + "\n"
    write_text(args.out, text)
    print(text)
    if bad:
        print(f"{len(bad)} comparison(s) above the tolerance", file=sys.stderr)
    if failed:
        print(f"{len(failed)} timing row(s) failed", file=sys.stderr)
    return 1 if bad or failed else 0


if __name__ == "__main__":
    sys.exit(main())
