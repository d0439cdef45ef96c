"""Deployment without Python: ``tracec plan`` writes a fresh learner and a POSIX sh driver
that trains and runs the artifact with IREE's iree-run-module alone. The driver's
checkpoint equals the Python runtime's (train_sequence over the same chunks) on the
host, and under qemu-aarch64 with the aarch64 iree-run-module on an artifact compiled
with --target-triple aarch64-linux-gnu (``make aarch64-runtime`` installs both; without
them those tests skip and say why). riscv64 is compiled, not run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tracec
import tracec.runtime
from conftest import EXAMPLES, ROOT, run_cli
from tracec.diagnostics import TracecError

LIF2 = os.path.join(EXAMPLES, "lif2.py")
# ES-D-RTRL with Adam, an update every 2nd step: every kind of carried value (params,
# optimizer state, state, traces, accumulators, counters) travels through the driver.
TRAIN_OPTIONS = dict(algorithm="es-d-rtrl", optimizer="adam", lr=0.01, update_every=2)
HOST_IREE_RUN_MODULE = os.path.join(os.path.dirname(sys.executable), "iree-run-module")
AARCH64_IREE_RUN_MODULE = os.path.join(ROOT, "build", "aarch64-runtime", "iree-run-module")
AARCH64_SYSROOT = "/usr/aarch64-linux-gnu"
# What the driver may call besides iree-run-module (docs/deploy.md lists the same).
POSIX_TOOLS = ("sh", "dd", "od", "grep", "awk", "tr", "wc", "cat", "cp", "mv", "rm", "mkdir",
               "dirname")
T, CHUNK = 10, 4


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """algorithm -> the example compiled for this machine with TRAIN_OPTIONS (once)."""
    folder = tmp_path_factory.mktemp("deploy")
    paths: dict[str, str] = {}

    def get(algorithm: str = TRAIN_OPTIONS["algorithm"]) -> str:
        if algorithm not in paths:
            path = str(folder / f"lif2_{algorithm}.vmfb")
            tracec.compile(LIF2, **{**TRAIN_OPTIONS, "algorithm": algorithm}).save(path)
            paths[algorithm] = path
        return paths[algorithm]

    return get


@pytest.fixture
def host_vmfb(compiled):
    return compiled()


def _data(seed=1, steps=T):
    rng = np.random.default_rng(seed)
    xs = (rng.random((steps, 32, 40)) < 0.3).astype(np.float32)
    targets = rng.integers(0, 10, (steps, 32)).astype(np.int32)
    return xs, targets


def _tool_dir(tmp_path):
    """A PATH holding only the POSIX tools the driver may use (no Python, no IREE)."""
    bin_dir = tmp_path / "posix-bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in POSIX_TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is not installed"
        if not (bin_dir / tool).exists():
            os.symlink(found, bin_dir / tool)
    return str(bin_dir)


def _driver(plan_dir, *args, run=HOST_IREE_RUN_MODULE, tmp_path, check=True):
    env = {"PATH": _tool_dir(tmp_path), "IREE_RUN_MODULE": run, "LC_ALL": "C"}
    p = subprocess.run(["sh", os.path.join(plan_dir, "run.sh"), *map(str, args)],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def _plan(vmfb, out):
    p = run_cli("plan", vmfb, "-o", str(out))
    assert p.returncode == 0, p.stderr
    return p.stdout


def _python_run(vmfb, xs, targets, masks=None):
    """The Python runtime over the same chunks: (learner, losses)."""
    learner = tracec.runtime.load(vmfb)
    losses = []
    for t0 in range(0, len(xs), CHUNK):
        m = None if masks is None else masks[t0:t0 + CHUNK]
        losses.append(learner.train_sequence(xs[t0:t0 + CHUNK], targets[t0:t0 + CHUNK], m))
    return learner, np.concatenate(losses)


def _close(a: dict, b: dict, tol: float, what: str):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].shape == b[name].shape and a[name].dtype == b[name].dtype, name
        err = float(np.max(np.abs(a[name] - b[name]), initial=0.0))
        assert err <= tol, f"{what} {name}: max |difference| {err:.3g} > {tol}"


def test_plan_init_is_a_fresh_learner(host_vmfb, tmp_path):
    out = _plan(host_vmfb, tmp_path / "plan")
    assert "computed here" in out
    fresh = tracec.runtime.load(host_vmfb)
    resumed = tracec.runtime.load(host_vmfb)
    resumed.load_checkpoint(str(tmp_path / "plan" / "init"))  # a checkpoint directory
    for what in ("params", "state", "traces"):
        _close(getattr(fresh, what), getattr(resumed, what), 0.0, what)
    meta = json.loads((tmp_path / "plan" / "init" / "checkpoint.json").read_text())
    # every carried value, in sorted order, one file each
    roles = {k.split(":")[0] for k in meta["keys"]}
    assert roles == {"param", "opt", "state", "trace", "accum", "counter"}
    assert meta["keys"] == sorted(meta["keys"])
    assert sorted(os.listdir(tmp_path / "plan" / "init")) == sorted(
        ["checkpoint.json"] + [f"v{i}.npy" for i in range(len(meta["keys"]))])


@pytest.mark.parametrize("algorithm", ["es-d-rtrl", "d-rtrl"])
def test_driver_trains_like_the_python_runtime(compiled, algorithm, tmp_path):
    """Parameters (and everything else carried) after T steps in chunks of CHUNK equal the
    Python runtime's to 1e-6, losses too; then a second run resumes from the checkpoint
    with a loss mask; then forward_sequence continues the state."""
    host_vmfb = compiled(algorithm)
    plan = tmp_path / "plan"
    _plan(host_vmfb, plan)
    xs, targets = _data()
    np.save(tmp_path / "xs.npy", xs)
    np.save(tmp_path / "targets.npy", targets)
    _driver(plan, "train", "-c", CHUNK, "ckpt", "xs.npy", "targets.npy", "out", tmp_path=tmp_path)
    learner, losses = _python_run(host_vmfb, xs, targets)
    driven = tracec.runtime.load(host_vmfb)
    driven.load_checkpoint(str(tmp_path / "ckpt"))
    assert driven.steps_since_reset == learner.steps_since_reset == T
    _close(learner.params, driven.params, 1e-6, "parameter")
    _close(learner.state, driven.state, 1e-6, "state")
    _close(learner.traces, driven.traces, 1e-6, "trace")
    np.testing.assert_allclose(np.load(tmp_path / "out" / "losses.npy"), losses, atol=1e-6)
    fresh = tracec.runtime.load(host_vmfb).params
    moved = max(float(np.abs(driven.params[k] - fresh[k]).max()) for k in fresh)
    assert moved > 1e-3, "training did not change the parameters"
    assert not (tmp_path / "ckpt" / ".run").exists()

    # A second run from the checkpoint, with a loss mask (steps with weight 0 learn nothing).
    xs2, targets2 = _data(seed=2, steps=7)
    masks = np.array([1, 0, 0.5, 1, 0, 0, 1], np.float32)
    np.save(tmp_path / "xs2.npy", xs2)
    np.save(tmp_path / "targets2.npy", targets2)
    np.save(tmp_path / "masks.npy", masks)
    _driver(plan, "train", "-c", CHUNK, "-m", "masks.npy", "ckpt", "xs2.npy", "targets2.npy",
            tmp_path=tmp_path)
    for t0 in range(0, 7, CHUNK):
        learner.train_sequence(xs2[t0:t0 + CHUNK], targets2[t0:t0 + CHUNK], masks[t0:t0 + CHUNK])
    driven.load_checkpoint(str(tmp_path / "ckpt"))
    assert driven.steps_since_reset == T + 7
    _close(learner.params, driven.params, 1e-6, "parameter after the masked run")

    # forward_sequence: outputs, and the state goes on; parameters stay.
    _driver(plan, "forward", "-c", 3, "ckpt", "xs.npy", "fwd", tmp_path=tmp_path)
    outputs = learner.forward_sequence(xs)
    np.testing.assert_allclose(np.load(tmp_path / "fwd" / "output.npy"), outputs, atol=1e-6)
    driven.load_checkpoint(str(tmp_path / "ckpt"))
    assert driven.steps_since_reset == 2 * T + 7
    _close(learner.state, driven.state, 1e-6, "state after forward")
    _close(learner.params, driven.params, 0.0, "parameter after forward")


def test_driver_refuses_bad_inputs_and_leaves_the_checkpoint(host_vmfb, tmp_path):
    plan = tmp_path / "plan"
    _plan(host_vmfb, plan)
    xs, targets = _data(steps=3)
    np.save(tmp_path / "xs.npy", xs)
    np.save(tmp_path / "targets.npy", targets)
    _driver(plan, "init", "ckpt", tmp_path=tmp_path)
    before = {f: (tmp_path / "ckpt" / f).read_bytes() for f in os.listdir(tmp_path / "ckpt")}
    bad_xs = xs.copy()
    bad_xs[1, 2, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad_xs)
    np.save(tmp_path / "int64.npy", targets.astype(np.int64))
    np.save(tmp_path / "short.npy", targets[:2])
    np.save(tmp_path / "narrow.npy", xs[:, :, :39])
    np.save(tmp_path / "mask2.npy", np.full(3, 2.0, np.float32))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "xs.npy").read_bytes()[:-7])
    (tmp_path / "not.npy").write_text("hello")
    cases = {
        ("train", "ckpt", "nan.npy", "targets.npy"): "contain NaN or Inf",
        ("train", "ckpt", "xs.npy", "int64.npy"): "dtype <i8, the model needs <i4",
        ("train", "ckpt", "xs.npy", "short.npy"): "have 2 steps",
        ("train", "-m", "mask2.npy", "ckpt", "xs.npy", "targets.npy"): "must be in [0, 1]",
        ("train", "ckpt", "cut.npy", "targets.npy"): "truncated",
        ("train", "ckpt", "not.npy", "targets.npy"): "not a .npy file",
        ("train", "ckpt", "narrow.npy", "targets.npy"): "has shape (3,32,39), expected (T,32,40)",
        ("forward", "-c", "0", "ckpt", "xs.npy", "o"): "positive integer",
        ("init", "ckpt"): "exists already",
    }
    for args, message in cases.items():
        p = _driver(plan, *args, tmp_path=tmp_path, check=False)
        assert p.returncode != 0 and message in p.stderr, (args, p.stderr)
        after = {f: (tmp_path / "ckpt" / f).read_bytes() for f in os.listdir(tmp_path / "ckpt")}
        assert after == before, f"{args} changed the checkpoint"
    # a new checkpoint folder that a refused run would have made is not left behind
    p = _driver(plan, "train", "new", "nan.npy", "targets.npy", tmp_path=tmp_path, check=False)
    assert p.returncode != 0 and not (tmp_path / "new").exists()


def test_checkpoint_directories_are_checked(host_vmfb, tmp_path):
    plan = tmp_path / "plan"
    _plan(host_vmfb, plan)
    learner = tracec.runtime.load(host_vmfb)
    params = learner.params
    init = plan / "init"

    def refused(folder, message):
        with pytest.raises(TracecError, match=message):
            learner.load_checkpoint(str(folder))
        _close(params, learner.params, 0.0, "parameter")  # the learner is unchanged

    unfinished = tmp_path / "unfinished"
    shutil.copytree(init, unfinished)
    os.unlink(unfinished / "checkpoint.json")
    refused(unfinished, "not a complete tracec checkpoint")
    missing = tmp_path / "missing"
    shutil.copytree(init, missing)
    os.unlink(missing / "v3.npy")
    refused(missing, "v3.npy .* is missing")
    cut = tmp_path / "cut"
    shutil.copytree(init, cut)
    data = (cut / "v3.npy").read_bytes()
    (cut / "v3.npy").write_bytes(data[:len(data) // 2])
    refused(cut, "truncated or damaged")
    swapped = tmp_path / "swapped"
    shutil.copytree(init, swapped)
    meta = json.loads((swapped / "checkpoint.json").read_text())
    k = next(i for i, key in enumerate(meta["keys"]) if key == "param:l1/w_in")
    np.save(swapped / f"v{k}.npy", np.zeros((64, 40), np.float32))
    refused(swapped, "needs float32")
    # and the driver refuses to run from an unfinished checkpoint
    np.save(tmp_path / "xs.npy", _data(steps=2)[0])
    p = _driver(plan, "forward", "unfinished", "xs.npy", "o", tmp_path=tmp_path, check=False)
    assert p.returncode != 0 and "not a complete checkpoint" in p.stderr, p.stderr


def test_plan_of_a_forward_only_artifact(lif2_vmfb, tmp_path):
    plan = tmp_path / "plan"
    out = _plan(lif2_vmfb, plan)
    assert "forward only" in out
    xs, targets = _data(steps=5)
    np.save(tmp_path / "xs.npy", xs)
    np.save(tmp_path / "targets.npy", targets)
    p = _driver(plan, "train", "ckpt", "xs.npy", "targets.npy", tmp_path=tmp_path, check=False)
    assert p.returncode != 0 and "does not learn" in p.stderr
    _driver(plan, "forward", "-c", 2, "ckpt", "xs.npy", "fwd", tmp_path=tmp_path)
    learner = tracec.runtime.load(lif2_vmfb)
    np.testing.assert_allclose(np.load(tmp_path / "fwd" / "output.npy"),
                               learner.forward_sequence(xs), atol=1e-6)
    # a folder holding something else is not overwritten; an earlier plan is replaced
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    p = run_cli("plan", lif2_vmfb, "-o", str(tmp_path / "other"))
    assert p.returncode != 0 and "other files" in p.stderr
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    _plan(lif2_vmfb, plan)
    # what iree-run-module cannot run is refused with one line
    from tracec.runtime.artifact import XLA_MAGIC, seal

    (tmp_path / "m.xla").write_bytes(seal(XLA_MAGIC + b"{}" * 40))
    p = run_cli("plan", str(tmp_path / "m.xla"), "-o", str(tmp_path / "xla-plan"))
    assert p.returncode != 0 and "XLA artifact" in p.stderr, p.stderr
    damaged = bytearray(open(lif2_vmfb, "rb").read())
    damaged[len(damaged) // 2] ^= 1
    (tmp_path / "damaged.vmfb").write_bytes(bytes(damaged))
    p = run_cli("plan", str(tmp_path / "damaged.vmfb"), "-o", str(tmp_path / "d-plan"))
    assert p.returncode != 0 and "integrity digest" in p.stderr, p.stderr


def _aarch64_or_skip():
    qemu = shutil.which("qemu-aarch64")
    if qemu is None:
        pytest.skip("qemu-aarch64 is not installed (`make aarch64-runtime` installs qemu-user "
                    "and libc6-arm64-cross with apt when run as root)")
    if not os.access(AARCH64_IREE_RUN_MODULE, os.X_OK):
        pytest.skip(f"no aarch64 iree-run-module at {AARCH64_IREE_RUN_MODULE} (`make "
                    "aarch64-runtime` takes it from the aarch64 iree-base-runtime wheel)")
    run = f"{qemu} -L {AARCH64_SYSROOT} {AARCH64_IREE_RUN_MODULE}"
    p = subprocess.run(run.split() + ["--help"], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        pytest.skip(f"the aarch64 iree-run-module does not start under qemu: "
                    f"{(p.stderr.strip().splitlines() or ['?'])[-1][:160]} (`make aarch64-runtime` "
                    "installs the arm64 C and C++ libraries)")
    return run


def test_aarch64_driver_under_qemu_equals_the_host(host_vmfb, tmp_path):
    """The artifact compiled for aarch64-linux-gnu, run by the aarch64 iree-run-module
    under qemu-aarch64: parameters after T steps equal the host's to 1e-5; forward too.
    Its initial values come from its own init_params/init_state (run on the 'board')."""
    run = _aarch64_or_skip()
    vmfb = str(tmp_path / "lif2_aarch64.vmfb")
    art = tracec.compile(LIF2, target_triple="aarch64-linux-gnu", **TRAIN_OPTIONS)
    art.save(vmfb)
    assert b"embedded-elf-arm_64" in open(vmfb, "rb").read()
    plan = tmp_path / "plan"
    assert "on the device" in _plan(vmfb, plan)
    xs, targets = _data()
    np.save(tmp_path / "xs.npy", xs)
    np.save(tmp_path / "targets.npy", targets)
    _driver(plan, "train", "-c", CHUNK, "ckpt", "xs.npy", "targets.npy", "out", run=run,
            tmp_path=tmp_path)
    host, losses = _python_run(host_vmfb, xs, targets)
    board = tracec.runtime.load(host_vmfb)  # the same model and rule, so its checkpoint loads
    board.load_checkpoint(str(tmp_path / "ckpt"))
    assert board.steps_since_reset == T
    _close(host.params, board.params, 1e-5, "parameter")
    _close(host.traces, board.traces, 1e-5, "trace")
    np.testing.assert_allclose(np.load(tmp_path / "out" / "losses.npy"), losses, atol=1e-5)
    _driver(plan, "forward", "-c", CHUNK, "ckpt", "xs.npy", "fwd", run=run, tmp_path=tmp_path)
    np.testing.assert_allclose(np.load(tmp_path / "fwd" / "output.npy"),
                               host.forward_sequence(xs), atol=1e-5)


@pytest.mark.parametrize("cpu", ["host", "sifive-u74"])
def test_riscv64_compiles(tmp_path, cpu):
    """riscv64 is compiled, not run (docs/deploy.md: build IREE's runtime for the board).
    Without --cpu the module is for the Linux baseline, rv64gc with the lp64d ABI (LLVM's
    generic riscv64 has no hardware floating point, and IREE's linker would then miss
    the soft-float routines); a named core (sifive-u74) works too."""
    art = tracec.compile(LIF2, algorithm="forward", target_triple="riscv64-linux-gnu",
                         cpu=cpu)
    path = str(tmp_path / "lif2_riscv64.vmfb")
    art.save(path)
    data = open(path, "rb").read()
    assert b"embedded-elf-riscv_64" in data and b"embedded-elf-x86_64" not in data
    out = _plan(path, tmp_path / "plan")  # a plan for the board, values from its device
    assert "on the device" in out


def test_deploy_doc_says_what_the_driver_needs_and_does():
    """docs/deploy.md lists the driver's tools and commands as run.sh has them, and the
    README links it."""
    import re

    from tracec.plan_driver import TEMPLATE

    doc = open(os.path.join(ROOT, "docs", "deploy.md")).read()
    needs = re.search(r"\*\*What it needs\.\*\* A POSIX `sh` and (.*?) \(busybox", doc, re.S)
    assert needs, "docs/deploy.md lost its list of tools"
    assert set(re.findall(r"`([a-z]+)`", needs.group(1))) | {"sh"} == set(POSIX_TOOLS)
    line = next(x for x in TEMPLATE.splitlines() if x.startswith("# Needs a POSIX sh and "))
    assert set(re.findall(r"[a-z]+", line.split(" and ", 1)[1])) | {"sh"} == set(POSIX_TOOLS)
    for command in ("init CKPT", "train [-c N] [-m MASKS.npy] CKPT XS.npy TARGETS.npy [OUTDIR]",
                    "forward [-c N] CKPT XS.npy OUTDIR"):
        assert f"sh run.sh {command}" in doc and f"sh run.sh {command}" in TEMPLATE
    assert "`docs/deploy.md`" in open(os.path.join(ROOT, "README.md")).read()
