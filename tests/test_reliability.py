"""Reliability: what tracec writes, what it refuses, and damaged files.

Output files are replaced atomically only when they are regular files; a symlink,
FIFO or device named by -o is written through, never replaced, and the model itself
is never overwritten. Artifacts carry an integrity digest that the runtime checks
before IREE or jax parses a byte; damaged artifacts and checkpoints are one-line
errors, never a crash or a silent NaN (the fuzz test at the end). Everything here
stays inside tmp_path.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
import zipfile

import numpy as np
import pytest

import tracec
import tracec.runtime
from conftest import EXAMPLES, ROOT, run_cli

LIF2 = os.path.join(EXAMPLES, "lif2.py")
B, N_IN, N_OUT = 32, 40, 10


def _one_line_error(proc, *fragments):
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def _x(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((B, N_IN)) < 0.2).astype(np.float32)


def _t(seed=0):
    return np.random.default_rng(seed).integers(0, N_OUT, B).astype(np.int32)


@pytest.fixture(scope="module")
def train_vmfb(tmp_path_factory):
    """lif2 with ES-D-RTRL and Adam (so there is optimizer state to protect)."""
    path = str(tmp_path_factory.mktemp("train") / "lif2-train.vmfb")
    tracec.compile(LIF2, algorithm="es-d-rtrl", optimizer="adam").save(path)
    return path


@pytest.fixture(scope="module")
def lif2_xla(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("xla") / "lif2.xla")
    tracec.compile(LIF2, target="xla").save(path)
    return path


def _carried(learner) -> dict[str, np.ndarray]:
    """Every value the learner carries (params, state, traces, optimizer state, ...)."""
    return {k: np.array(learner._exec.to_numpy(v)) for k, v in learner._values.items()}


def _assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ---------------------------------------------------------------------------------
# Output files: -o never replaces a symlink, FIFO or device, never the model


def test_output_symlink_stays_a_symlink(tmp_path):
    target = tmp_path / "real.vmfb"
    target.write_bytes(b"old")
    target.chmod(0o640)
    link = tmp_path / "link.vmfb"
    link.symlink_to(target.name)
    proc = run_cli(LIF2, "-o", str(link))
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and os.readlink(link) == "real.vmfb"
    data = target.read_bytes()
    assert data[:4] == b"PK\x03\x04" and tracec.runtime.load(str(link)).manifest
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the replaced file's mode is kept
    assert sorted(os.listdir(tmp_path)) == ["link.vmfb", "real.vmfb"]  # no temporaries
    # IR to a symlink, and a dangling symlink: its target is created, the link kept.
    dangling = tmp_path / "ir.mlir"
    dangling.symlink_to("made.mlir")
    proc = run_cli(LIF2, "--emit", "stablehlo", "-o", str(dangling))
    assert proc.returncode == 0, proc.stderr
    assert dangling.is_symlink() and (tmp_path / "made.mlir").read_text().startswith('"builtin.module"')


def _fifo_reader(path, sink):
    with open(path, "rb") as f:
        sink.append(f.read())


def test_output_fifo_stays_a_fifo(tmp_path):
    """What happened to /dev/null: -o names something that is not a regular file. It is
    opened and written, never renamed over (the same for a device)."""
    for emit in (["--emit", "stablehlo"], []):
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        got: list[bytes] = []
        reader = threading.Thread(target=_fifo_reader, args=(str(fifo), got), daemon=True)
        reader.start()
        proc = run_cli(LIF2, *emit, "-o", str(fifo))
        if reader.is_alive():  # tracec failed before opening it: release the reader
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
        assert got and len(got[0]) > 1000
        if not emit:
            assert got[0][:4] == b"PK\x03\x04"
        assert os.listdir(tmp_path) == ["pipe"]  # no temporary, no replacement
        fifo.unlink()


def test_atomic_write_kinds_of_path(tmp_path):
    from tracec.fileio import atomic_write

    # regular file and new file
    atomic_write(str(tmp_path / "a"), b"1")
    atomic_write(str(tmp_path / "a"), "2")
    assert (tmp_path / "a").read_text() == "2"
    # symlink to a regular file, through a symlinked folder
    (tmp_path / "dir").mkdir()
    (tmp_path / "dirlink").symlink_to("dir")
    (tmp_path / "dir" / "f").write_text("old")
    (tmp_path / "l").symlink_to(tmp_path / "dirlink" / "f")
    atomic_write(str(tmp_path / "l"), "new")
    assert (tmp_path / "l").is_symlink() and (tmp_path / "dir" / "f").read_text() == "new"
    # FIFO in-process
    os.mkfifo(tmp_path / "p")
    got: list[bytes] = []
    t = threading.Thread(target=_fifo_reader, args=(str(tmp_path / "p"), got), daemon=True)
    t.start()
    atomic_write(str(tmp_path / "p"), b"through")
    t.join(timeout=10)
    assert got == [b"through"] and stat.S_ISFIFO(os.lstat(tmp_path / "p").st_mode)
    # a directory, and a path under a regular file: one-line errors
    with pytest.raises(tracec.TracecError, match="is a directory"):
        atomic_write(str(tmp_path / "dir"), b"x")
    with pytest.raises(tracec.TracecError, match="cannot write .*a/x"):
        atomic_write(str(tmp_path / "a" / "x"), b"x")


def test_output_is_the_model_file_is_refused(tmp_path):
    model = tmp_path / "m.py"
    helper = tmp_path / "helper.py"
    helper.write_text("N = 4\n")
    model.write_text(textwrap.dedent("""\
        import jax, jax.numpy as jnp, tracec
        from helper import N

        def step(p, s, x):
            v = 0.9 * s["v"] + x @ p["w"]
            return {"v": v}, v

        model = tracec.Model(init_params=lambda k: {"w": jnp.ones((3, N))},
                             init_state=lambda b: {"v": jnp.zeros((b, N))}, step=step,
                             input=jax.ShapeDtypeStruct((2, 3), jnp.float32))
        """))
    source, helper_source = model.read_bytes(), helper.read_bytes()
    _one_line_error(run_cli(str(model), "-o", str(model), cwd=str(tmp_path)),
                    "is the input file", "choose another output file name")
    (tmp_path / "link.py").symlink_to("m.py")
    _one_line_error(run_cli("m.py", "-o", "link.py", cwd=str(tmp_path)), "is the input file")
    _one_line_error(run_cli("m.py", "--emit", "stablehlo", "-o", "m.py", cwd=str(tmp_path)),
                    "is the input file")
    # a module the model imported from its folder
    _one_line_error(run_cli("m.py", "-o", "helper.py", cwd=str(tmp_path)),
                    "is the input file", "helper.py")
    assert model.read_bytes() == source and helper.read_bytes() == helper_source
    # a .mlir input
    mlir = tmp_path / "m.mlir"
    assert run_cli("m.py", "--emit", "stablehlo", "-o", "m.mlir", cwd=str(tmp_path)).returncode == 0
    text = mlir.read_text()
    _one_line_error(run_cli("m.mlir", "-o", "m.mlir", cwd=str(tmp_path)), "is the input file")
    assert mlir.read_text() == text


def test_dash_output_is_stdout_for_ir_and_refused_for_binaries(tmp_path):
    proc = run_cli(LIF2, "--emit", "stablehlo", "-o", "-", cwd=str(tmp_path))
    assert proc.returncode == 0 and proc.stdout.startswith('"builtin.module"'), proc.stderr
    _one_line_error(run_cli(LIF2, "-o", "-", cwd=str(tmp_path)),
                    "-o -: a binary artifact is not written to stdout")
    _one_line_error(run_cli(LIF2, "--target", "xla", "-o", "-", cwd=str(tmp_path)),
                    "not written to stdout")
    _one_line_error(run_cli(LIF2, "-o", str(tmp_path)), "is a directory")
    assert os.listdir(tmp_path) == []  # no file named "-"


def test_stale_temporaries_are_cleaned(tmp_path):
    from tracec.fileio import atomic_write

    dead = tmp_path / ".tracec-999999999-abc.tmp"  # no process has this id
    old = tmp_path / ".tracec-legacyname"
    alive = tmp_path / f".tracec-{os.getpid()}-live.tmp"  # a writer still running
    unrelated = tmp_path / ".tracecrc"
    for p in (dead, old, alive, unrelated):
        p.write_bytes(b"partial")
    hours_ago = time.time() - 2 * 3600
    os.utime(old, (hours_ago, hours_ago))
    atomic_write(str(tmp_path / "out.bin"), b"data")
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, unrelated.name, "out.bin"])


def test_kill_9_during_a_write_leaves_a_temporary_the_next_write_removes(tmp_path):
    code = textwrap.dedent("""\
        import os, sys, time
        import tracec.fileio as f
        os.fsync = lambda fd: (print("writing", flush=True), time.sleep(120))
        f.atomic_write(sys.argv[1], b"x" * 1000)
        """)
    out = tmp_path / "out.vmfb"
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "writing"
        temps = [n for n in os.listdir(tmp_path) if n.startswith(".tracec-")]
        assert len(temps) == 1 and temps[0].startswith(f".tracec-{proc.pid}-")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert [n for n in os.listdir(tmp_path) if n.startswith(".tracec-")] == temps  # left behind
    from tracec.fileio import atomic_write

    atomic_write(str(out), b"good")
    assert os.listdir(tmp_path) == ["out.vmfb"] and out.read_bytes() == b"good"


# ---------------------------------------------------------------------------------
# The integrity digest


def test_vmfb_digest_is_the_zip_comment_and_iree_tools_still_load_it(lif2_vmfb, tmp_path):
    from tracec.runtime.artifact import DIGEST_TAG, unseal

    data = open(lif2_vmfb, "rb").read()
    with zipfile.ZipFile(lif2_vmfb) as z:
        assert z.testzip() is None
        assert z.comment.startswith(DIGEST_TAG)
        digest = z.comment[len(DIGEST_TAG):].decode()
    body = unseal(lif2_vmfb, data)
    assert hashlib.sha256(body).hexdigest() == digest
    assert body[-2:] == b"\0\0" and len(body) == len(data) - len(z.comment)  # iree-compile's bytes
    # IREE's own tool runs the sealed file as it is.
    tool = os.path.join(os.path.dirname(sys.executable), "iree-run-module")
    run = subprocess.run([tool, f"--module={lif2_vmfb}", "--device=local-sync",
                          "--function=init_state"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "32x64xf32" in run.stdout, run.stderr
    # ... and so does iree.runtime, on the module bytes (what tracec.runtime hands it).
    import iree.runtime as rt

    config = rt.Config("local-sync")
    for blob in (data, body):
        module = rt.VmModule.copy_buffer(config.vm_instance, blob)
        assert module.lookup_function("forward") is not None


def test_xla_container_ends_with_its_digest(lif2_xla):
    from tracec.runtime.artifact import DIGEST_LEN, DIGEST_TAG, XLA_MAGIC

    data = open(lif2_xla, "rb").read()
    assert data.startswith(XLA_MAGIC) and data[-DIGEST_LEN:].startswith(DIGEST_TAG)
    assert data[-64:].decode() == hashlib.sha256(data[:-DIGEST_LEN]).hexdigest()


@pytest.mark.parametrize("which", ["vmfb", "xla"])
def test_artifact_without_digest_is_refused_with_recompile(lif2_vmfb, lif2_xla, tmp_path, which):
    """Files written before format version 2 have no digest: refused, with what to do."""
    from tracec.runtime.artifact import unseal

    path = lif2_vmfb if which == "vmfb" else lif2_xla
    old = tmp_path / f"old.{which}"
    old.write_bytes(unseal(path, open(path, "rb").read()))
    with pytest.raises(tracec.TracecError) as e:
        tracec.runtime.load(str(old))
    msg = str(e.value)
    assert "\n" not in msg and str(old) in msg
    assert "no tracec integrity digest" in msg and "recompile" in msg


def test_flipped_bit_is_refused_before_iree_parses_it(lif2_vmfb, tmp_path):
    data = bytearray(open(lif2_vmfb, "rb").read())
    data[len(data) // 3] ^= 0x10
    bad = tmp_path / "bad.vmfb"
    bad.write_bytes(bytes(data))
    with pytest.raises(tracec.TracecError, match=r"bad.vmfb is damaged: its contents do not "
                                                 r"match its integrity digest"):
        tracec.runtime.load(str(bad))


# ---------------------------------------------------------------------------------
# The compile cache


def test_corrupt_cache_entries_are_misses(tmp_path, monkeypatch):
    from tracec import driver
    from tracec.runtime.artifact import seal

    monkeypatch.setenv("TRACEC_CACHE_DIR", str(tmp_path))
    good_meta = {"target": "llvm-cpu", "manifest": {}, "ir": {}, "warnings": []}

    def entry(key, meta, blob):
        (tmp_path / f"{key}.json").write_text(json.dumps(meta))
        (tmp_path / f"{key}.bin").write_bytes(blob)

    entry("list", [1, 2, 3], seal(b"x"))
    entry("empty", {**good_meta, "binary_sha256": hashlib.sha256(b"").hexdigest()}, b"")
    forged = b"not a module"  # consistent with the JSON, but without the artifact's digest
    entry("forged", {**good_meta, "binary_sha256": hashlib.sha256(forged).hexdigest()}, forged)
    entry("types", {**good_meta, "ir": ["x"], "binary_sha256": hashlib.sha256(seal(b"x")).hexdigest()},
          seal(b"x"))
    (tmp_path / "badjson.json").write_bytes(b"\xff{")
    (tmp_path / "badjson.bin").write_bytes(seal(b"x"))
    for key in ("list", "empty", "forged", "types", "badjson", "missing"):
        assert driver._cache_load(key) is None, key
    ok = seal(b"module bytes")
    entry("ok", {**good_meta, "binary_sha256": hashlib.sha256(ok).hexdigest()}, ok)
    assert driver._cache_load("ok").binary == ok


def test_crafted_cache_entry_never_gives_an_empty_artifact(tmp_path):
    """A zero-byte blob whose JSON agrees with it: a miss, the compile runs and writes a
    real module."""
    env = {"TRACEC_CACHE_DIR": str(tmp_path / "cache")}
    first = run_cli(LIF2, "-o", str(tmp_path / "a.vmfb"), env=env)
    assert first.returncode == 0, first.stderr
    for name in os.listdir(tmp_path / "cache"):
        p = tmp_path / "cache" / name
        if name.endswith(".bin"):
            p.write_bytes(b"")
        else:
            meta = json.loads(p.read_text())
            meta["binary_sha256"] = hashlib.sha256(b"").hexdigest()
            p.write_text(json.dumps(meta))
    second = run_cli(LIF2, "-o", str(tmp_path / "b.vmfb"), env=env)
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "b.vmfb").read_bytes() == (tmp_path / "a.vmfb").read_bytes()
    for name in os.listdir(tmp_path / "cache"):  # a list instead of an object: a miss too
        if name.endswith(".json"):
            (tmp_path / "cache" / name).write_text("[]")
    third = run_cli(LIF2, "-o", str(tmp_path / "c.vmfb"), env=env)
    assert third.returncode == 0 and third.stderr == "", third.stderr


# ---------------------------------------------------------------------------------
# Training inputs: masks


@pytest.mark.parametrize("mask", [float("nan"), float("inf"), -float("inf"), -5.0, 2.0, 1.0001,
                                  "x", [1.0, 1.0]])
def test_bad_train_step_mask_is_refused_and_nothing_changes(train_vmfb, mask):
    learner = tracec.runtime.load(train_vmfb)
    learner.train_step(_x(1), _t(1))  # some optimizer state that is not zero
    before, steps = _carried(learner), learner.steps_since_reset
    with pytest.raises(tracec.TracecError) as e:
        learner.train_step(_x(2), _t(2), mask=mask)
    assert "\n" not in str(e.value) and "mask" in str(e.value)
    _assert_same(before, _carried(learner))
    assert learner.steps_since_reset == steps
    # 0 and 1 and anything between are fine
    for ok in (0.0, 0.5, 1, True):
        learner.train_step(_x(3), _t(3), mask=ok)


@pytest.mark.parametrize("masks", [[1, float("nan"), 1], [1, 1, 2], [-1, 0, 0], [1, 1],
                                   [[1, 1, 1]]])
def test_bad_train_sequence_mask_is_refused_and_nothing_changes(train_vmfb, masks):
    learner = tracec.runtime.load(train_vmfb)
    xs, ts = np.stack([_x(i) for i in range(3)]), np.stack([_t(i) for i in range(3)])
    learner.train_sequence(xs, ts)
    before = _carried(learner)
    with pytest.raises(tracec.TracecError, match="mask"):
        learner.train_sequence(xs, ts, mask=np.array(masks, np.float32))
    _assert_same(before, _carried(learner))
    learner.train_sequence(xs, ts, mask=np.array([1, 0, 0.25], np.float32))


# ---------------------------------------------------------------------------------
# Arrays the learner returns are copies


@pytest.mark.parametrize("which", ["llvm-cpu", "xla"])
def test_params_state_and_outputs_are_writable_copies(lif2_vmfb, lif2_xla, which):
    learner = tracec.runtime.load(lif2_vmfb if which == "llvm-cpu" else lif2_xla)
    out = learner.forward(_x())
    params, state = learner.params, learner.state
    for arr in (out, *params.values(), *state.values()):
        assert arr.flags.writeable and arr.flags.owndata
    keep = {k: v.copy() for k, v in params.items()}
    for v in params.values():
        v[...] = 123.0
    for v in state.values():
        v[...] = 7.0
    _assert_same(keep, learner.params)
    assert not any(np.all(v == 7.0) for v in learner.state.values())
    fresh = tracec.runtime.load(lif2_vmfb if which == "llvm-cpu" else lif2_xla)
    np.testing.assert_allclose(learner.forward(_x(1)),
                               fresh.forward_sequence(np.stack([_x(), _x(1)]))[1],
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------
# Checkpoints


@pytest.fixture(scope="module")
def checkpoint(train_vmfb, tmp_path_factory):
    learner = tracec.runtime.load(train_vmfb)
    for i in range(3):
        learner.train_step(_x(i), _t(i))
    path = str(tmp_path_factory.mktemp("ck") / "ck.npz")
    learner.save_checkpoint(path)
    return path


def _resaved(path, out, change):
    """The checkpoint at ``path`` with ``change(arrays)`` applied, saved to ``out``."""
    with np.load(path) as z:
        members = {k: z[k] for k in z.files}
    meta = json.loads(bytes(members["__meta__"]).decode())
    arrays = {k: members[f"v{i}"] for i, k in enumerate(meta["keys"])}
    change(arrays)
    np.savez(out, __meta__=members["__meta__"],
             **{f"v{i}": arrays[k] for i, k in enumerate(meta["keys"])})
    return str(out)


def test_damaged_checkpoints_are_one_line_errors_and_nothing_changes(train_vmfb, checkpoint,
                                                                     tmp_path):
    data = open(checkpoint, "rb").read()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x04
    np.save(tmp_path / "array.npy", np.zeros(3))

    def wrong_shape(a):
        a["param:out/w"] = np.zeros((3, 3), np.float32)

    def wrong_dtype(a):
        a["param:out/w"] = a["param:out/w"].astype(np.float64)

    def nan(a):
        a["param:out/w"] = np.full_like(a["param:out/w"], np.nan)

    cases = {
        "truncated": (tmp_path / "t.npz", data[: len(data) // 2]),
        "flipped": (tmp_path / "f.npz", bytes(flipped)),
        "empty": (tmp_path / "e.npz", b""),
        "npy": (tmp_path / "array.npy", None),
        "text": (tmp_path / "x.npz", b"hello"),
        "missing": (tmp_path / "nope.npz", None),
    }
    paths = {}
    for name, (p, content) in cases.items():
        if content is not None:
            p.write_bytes(content)
        paths[name] = str(p)
    paths["wrong shape"] = _resaved(checkpoint, tmp_path / "s.npz", wrong_shape)
    paths["wrong dtype"] = _resaved(checkpoint, tmp_path / "d.npz", wrong_dtype)
    paths["nan"] = _resaved(checkpoint, tmp_path / "n.npz", nan)
    learner = tracec.runtime.load(train_vmfb)
    learner.train_step(_x(5), _t(5))
    before = _carried(learner)
    for name, path in paths.items():
        with pytest.raises(tracec.TracecError) as e:
            learner.load_checkpoint(path)
        msg = str(e.value)
        assert "\n" not in msg and path in msg, (name, msg)
        _assert_same(before, _carried(learner))
    assert "'param:out/w' is float32[3, 3], but" in _error_of(learner, paths["wrong shape"])
    assert "needs float32[64, 10]" in _error_of(learner, paths["wrong shape"])
    assert "is float64[64, 10]" in _error_of(learner, paths["wrong dtype"])
    assert "NaN" in _error_of(learner, paths["nan"])
    assert "single .npy array" in _error_of(learner, paths["npy"])
    # the learner still works and the good checkpoint still loads
    learner.load_checkpoint(checkpoint)
    learner.train_step(_x(6), _t(6))


def _error_of(learner, path) -> str:
    try:
        learner.load_checkpoint(path)
    except tracec.TracecError as e:
        return str(e)
    return ""


def test_es_d_rtrl_keeps_learning_when_its_step_counter_reaches_two_to_the_31(train_vmfb,
                                                                               checkpoint,
                                                                               tmp_path):
    """A learner that has run 2^31 steps since its last reset (a day of online learning)
    learns as one that has run 10^7: the step counter n stops at 2^30 instead of
    wrapping to a negative count, whose bias correction 1/(1-α^n) would be zero."""
    def at(n):
        def change(arrays):
            arrays["counter:n"] = np.array(n, np.int32)
        learner = tracec.runtime.load(train_vmfb)
        learner.load_checkpoint(_resaved(checkpoint, tmp_path / f"n{n}.npz", change))
        before = learner.params
        for i in range(4):
            learner.train_step(_x(10 + i), _t(10 + i))
        after = learner.params
        return {k: after[k] - before[k] for k in after}, learner

    far, _ = at(10 ** 7)
    near, learner = at(2 ** 31 - 3)
    assert any(np.any(d != 0) for d in far.values())
    for k in far:
        np.testing.assert_allclose(near[k], far[k], rtol=1e-5, atol=1e-7, err_msg=k)
    learner.save_checkpoint(str(tmp_path / "after.npz"))
    with np.load(tmp_path / "after.npz") as z:
        meta = json.loads(bytes(z["__meta__"]).decode())
        n = int(z[f"v{meta['keys'].index('counter:n')}"])
    assert 0 < n <= 2 ** 31 - 1


# ---------------------------------------------------------------------------------
# Compile-time refusals


def _write_model(tmp_path, *parts: str, name="m.py") -> str:
    path = tmp_path / name
    path.write_text("import jax, jax.numpy as jnp, numpy as np, tracec\n"
                    + "".join(textwrap.dedent(p) for p in parts))
    return str(path)


def _line_of(path: str, text: str) -> int:
    return next(i for i, line in enumerate(open(path), 1) if text in line)


STEP = """
def step(p, s, x):
    v = 0.9 * s["v"] + x @ p["w"]
    return {"v": v}, v

def loss(o, t):
    return jnp.mean((o - t) ** 2)
"""


def test_host_callback_is_refused_for_xla_with_the_line(tmp_path):
    path = _write_model(tmp_path, """
        def host(v):
            return np.asarray(v) * 2

        def step(p, s, x):
            v = 0.9 * s["v"] + x @ p["w"]
            v = jax.pure_callback(host, jax.ShapeDtypeStruct(v.shape, v.dtype), v)
            return {"v": v}, v

        model = tracec.Model(init_params=lambda k: {"w": jnp.ones((3, 4))},
                             init_state=lambda b: {"v": jnp.zeros((b, 4))}, step=step,
                             input=jax.ShapeDtypeStruct((2, 3), jnp.float32))
        """)
    out = tmp_path / "m.xla"
    line = _one_line_error(run_cli(path, "--target", "xla", "-o", str(out), "--no-cache"),
                           "host callback", "pure_callback")
    assert line.startswith(f"{path}:{_line_of(path, 'jax.pure_callback')}:")
    assert not out.exists()
    _one_line_error(run_cli(path, "-o", str(tmp_path / "m.vmfb"), "--no-cache"), "host callback")


def test_dtype_instead_of_a_spec_is_a_clear_error(tmp_path):
    import jax
    import jax.numpy as jnp

    with pytest.raises(tracec.TracecError, match=r"'target' must be a jax.ShapeDtypeStruct .*"
                                                 r"got the dtype int32 alone"):
        tracec.Model(init_params=lambda k: {}, init_state=lambda b: {}, step=lambda p, s, x: (s, x),
                     input=jax.ShapeDtypeStruct((2, 3), jnp.float32), target=jnp.int32)
    with pytest.raises(tracec.TracecError, match="'input' must be a jax.ShapeDtypeStruct"):
        tracec.Model(init_params=lambda k: {}, init_state=lambda b: {}, step=lambda p, s, x: (s, x),
                     input=(2, 3))
    path = _write_model(tmp_path, STEP, """
        model = tracec.Model(init_params=lambda k: {"w": jnp.ones((3, 4))},
                             init_state=lambda b: {"v": jnp.zeros((b, 4))}, step=step, loss=loss,
                             input=jax.ShapeDtypeStruct((2, 3), jnp.float32), target=jnp.int32)
        """)
    for argv in (["inspect", path], [path, "-o", str(tmp_path / "m.vmfb")]):
        line = _one_line_error(run_cli(*argv), "'target' must be a jax.ShapeDtypeStruct",
                               "jax.ShapeDtypeStruct((B,), jnp.int32)")
        assert line.startswith(f"{path}:{_line_of(path, 'model = tracec.Model')}:")


@pytest.mark.parametrize("dtype", ["np.float64", "np.int64"])
def test_64_bit_input_spec_is_refused(tmp_path, dtype):
    path = _write_model(tmp_path, STEP, f"""
        model = tracec.Model(init_params=lambda k: {{"w": jnp.ones((3, 4))}},
                             init_state=lambda b: {{"v": jnp.zeros((b, 4))}}, step=step,
                             input=jax.ShapeDtypeStruct((2, 3), {dtype}))
        """)
    want = "float32" if "float" in dtype else "int32"
    _one_line_error(run_cli(path, "-o", str(tmp_path / "m.vmfb")), "64-bit types disabled",
                    f"declare it {want}")


@pytest.fixture(scope="module")
def lif2_mlir(tmp_path_factory):
    path = tmp_path_factory.mktemp("mlir") / "lif2.mlir"
    path.write_text(tracec.compile(LIF2, emit="stablehlo").ir["stablehlo"])
    return str(path)


def test_stablehlo_file_trains_like_its_model(lif2_mlir, train_vmfb, tmp_path):
    """`tracec m.mlir --algorithm es-d-rtrl` (from --emit stablehlo) trains, step for step
    like the model.py it came from."""
    out = str(tmp_path / "m.vmfb")
    tracec.compile(lif2_mlir, algorithm="es-d-rtrl", optimizer="adam").save(out)
    from_mlir, from_py = tracec.runtime.load(out), tracec.runtime.load(train_vmfb)
    assert from_mlir.manifest["source"]["target"] == {"name": "target", "shape": [B],
                                                      "dtype": "int32"}
    for i in range(3):
        la, oa = from_mlir.train_step(_x(i), _t(i))
        lb, ob = from_py.train_step(_x(i), _t(i))
        assert la == lb and np.array_equal(oa, ob)
    _assert_same(from_mlir.params, from_py.params)
    xs, ts = np.stack([_x(i) for i in range(4)]), np.stack([_t(i) for i in range(4)])
    np.testing.assert_array_equal(from_mlir.train_sequence(xs, ts), from_py.train_sequence(xs, ts))


STEP_MLIR = """\
func.func @main(%w: tensor<3x4xf32> {tracec.role = "param", tracec.name = "w"},
                %v: tensor<2x4xf32> {tracec.role = "state", tracec.name = "v"},
                %x: tensor<2x3xf32> {tracec.role = "input", tracec.name = "x"})
    -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %c = stablehlo.constant dense<0.5> : tensor<2x4xf32>
  %a = stablehlo.multiply %c, %v : tensor<2x4xf32>
  %d = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  %n = stablehlo.add %a, %d : tensor<2x4xf32>
  return %n, %n : tensor<2x4xf32>, tensor<2x4xf32>
}
"""


def test_stablehlo_file_without_result_roles_and_without_loss(tmp_path):
    path = tmp_path / "step.mlir"
    path.write_text(STEP_MLIR)
    out = str(tmp_path / "step.vmfb")
    tracec.compile(str(path), use_cache=False).save(out)  # results: new state, then output
    learner = tracec.runtime.load(out)
    assert [s["name"] for s in learner.manifest["state"]] == ["v"]
    assert [s["name"] for s in learner.manifest["outputs"]] == ["output"]
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    learner.set_params({"w": w})
    x = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(learner.forward(x), x @ w)
    np.testing.assert_allclose(learner.forward(x), 0.5 * (x @ w) + x @ w)
    # training needs @loss: refused before any pass, naming the file
    with pytest.raises(tracec.TracecError, match=r"step.mlir has no @loss function; training "
                                                 r"\(--algorithm es-d-rtrl\) needs one"):
        tracec.compile(str(path), algorithm="es-d-rtrl", use_cache=False)
    # results that cannot be the new state
    bad = tmp_path / "bad.mlir"
    bad.write_text(STEP_MLIR.replace("-> (tensor<2x4xf32>, tensor<2x4xf32>)", "-> tensor<2x4xf32>")
                   .replace("return %n, %n : tensor<2x4xf32>, tensor<2x4xf32>",
                            "return %n : tensor<2x4xf32>"))
    with pytest.raises(tracec.TracecError, match="has no tracec.role on its results"):
        tracec.compile(str(bad), use_cache=False)


def test_artifact_without_target_spec_is_a_clear_training_error(train_vmfb, tmp_path):
    learner = tracec.runtime.load(train_vmfb)
    learner._target = None  # as the manifest of a file that lacks source.target
    with pytest.raises(tracec.TracecError, match="no target spec in its manifest"):
        learner.train_step(_x(), _t())


def test_bad_pipeline_syntax_is_one_line():
    for spec in ("foo{", "extract-step{x=}", "a,,{"):
        line = _one_line_error(run_cli(LIF2, "-p", spec, "--emit", "tracec"), "bad pipeline")
        assert spec in line
    _one_line_error(run_cli("-", "-p", "foo{", prog="tracec-opt", input=""), "bad pipeline")


def test_bogus_target_triple_and_cpu_are_one_line(tmp_path):
    out = str(tmp_path / "m.vmfb")
    _one_line_error(run_cli(LIF2, "--target-triple", "bogus", "-o", out, "--no-cache"),
                    "unknown target triple 'bogus'")
    _one_line_error(run_cli(LIF2, "--cpu", "bogus", "-o", out, "--no-cache"),
                    "unknown CPU 'bogus'")
    assert not os.path.exists(out)


def test_unwritable_dump_dir_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("")
    _one_line_error(run_cli(LIF2, "--emit", "stablehlo", "--dump-dir", str(tmp_path / "file" / "d"),
                            "-o", str(tmp_path / "out.mlir")),
                    "--dump-dir: cannot create")
    _one_line_error(run_cli(LIF2, "--emit", "stablehlo", "--dump-dir", str(tmp_path / "file"),
                            "-o", str(tmp_path / "out.mlir")),
                    "--dump-dir: cannot create")


def test_option_errors_name_the_option_both_ways():
    with pytest.raises(tracec.TracecError, match=r"^error: lr \(--lr\) must be a positive"):
        tracec.CompileOptions(lr=-1)
    with pytest.raises(tracec.TracecError, match=r"decay \(--decay\) must be in \[0, 1\)"):
        tracec.compile(LIF2, decay=2.0)
    with pytest.raises(tracec.TracecError, match=r"scan_unroll \(--scan-unroll\)"):
        tracec.CompileOptions(scan_unroll=0)
    with pytest.raises(tracec.TracecError, match=r"update_every \(--update-every\)"):
        tracec.CompileOptions(update_every=0)


# ---------------------------------------------------------------------------------
# Fuzz: damaged artifacts and checkpoints, each loaded and run in a subprocess

FUZZ_SEED = 20240611
FUZZ_CASES = {"vmfb": 250, "xla": 150, "checkpoint": 250}
CHUNK = 50  # cases per subprocess

# The child: applies each case's damage to the good file, loads it and runs it, and
# reports "START id" before and "RESULT id outcome detail" after each case, so a death
# by signal names the case it died in.
CHILD = r'''
import json, os, sys
import numpy as np
import tracec.runtime as rt
from tracec.diagnostics import TracecError

spec = json.load(open(sys.argv[1]))
kind, work = spec["kind"], spec["work"]
ref = dict(np.load(spec["reference"]))
original = open(spec["good"], "rb").read()


def say(*parts):
    print(*parts, flush=True)


def damaged(case):
    data = bytearray(original)
    if case["op"] == "flip":
        data[case["pos"]] ^= 1 << case["bit"]
    elif case["op"] == "xor":
        data[case["pos"]] ^= case["mask"]
    elif case["op"] == "truncate":
        del data[case["len"]:]
    elif case["op"] == "selfkill":  # checks the harness
        import signal
        os.kill(os.getpid(), signal.SIGSEGV)
    return bytes(data)


def carried(learner):
    return {k: np.array(learner._exec.to_numpy(v)) for k, v in learner._values.items()}


def equal(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


learner = rt.load(spec["artifact"]) if kind == "checkpoint" else None
for case in spec["cases"]:
    path = os.path.join(work, "case%d%s" % (case["id"], spec["suffix"]))
    say("START", case["id"])
    with open(path, "wb") as f:
        f.write(damaged(case))
    before = carried(learner) if learner is not None else None
    try:
        if kind == "checkpoint":
            learner.load_checkpoint(path)
            loss, out = learner.train_step(ref["x"], ref["t"])
            got = {"loss": np.float32(loss), "out": out}
            want = {"loss": ref["loss"], "out": ref["out"]}
        else:
            out = rt.load(path).forward(ref["x"])
            got, want = {"out": out}, {"out": ref["out"]}
        finite = all(np.all(np.isfinite(v)) for v in got.values())
        if not finite:
            say("RESULT", case["id"], "nan", "")
        elif equal({k: np.asarray(v) for k, v in got.items()}, want):
            say("RESULT", case["id"], "same", "")
        else:
            say("RESULT", case["id"], "different", "")
    except TracecError as e:
        msg = str(e)
        if "\n" in msg or path not in msg:
            say("RESULT", case["id"], "unclear-error", json.dumps(msg))
        elif learner is not None and not equal(before, carried(learner)):
            say("RESULT", case["id"], "changed-on-error", json.dumps(msg))
        else:
            say("RESULT", case["id"], "error", json.dumps(msg[:120]))
    except BaseException as e:
        say("RESULT", case["id"], "raw-exception", json.dumps("%s: %s" % (type(e).__name__, str(e)[:200])))
    os.unlink(path)
say("DONE")
'''


def _fuzz_cases(rng, size: int, n: int, first_id: int) -> list[dict]:
    """Single-bit flips anywhere and near both ends (headers, the zip directory, the
    digest), byte scrambles, and truncations (edge lengths included)."""
    cases = []
    edges = [0, 1, 8, size // 2, size - 100, size - 80, size - 78, size - 64, size - 1]
    for i in range(n):
        r = rng.random()
        if r < 0.45:
            pos = int(rng.integers(0, size))
            case = {"op": "flip", "pos": pos, "bit": int(rng.integers(0, 8))}
        elif r < 0.65:
            end = rng.random() < 0.5
            pos = int(rng.integers(max(0, size - 512), size)) if end else int(rng.integers(0, min(512, size)))
            case = {"op": "flip", "pos": pos, "bit": int(rng.integers(0, 8))}
        elif r < 0.75:
            case = {"op": "xor", "pos": int(rng.integers(0, size)), "mask": int(rng.integers(1, 256))}
        else:
            length = edges[i % len(edges)] if rng.random() < 0.4 else int(rng.integers(0, size))
            case = {"op": "truncate", "len": max(0, min(size - 1, length))}
        case["id"] = first_id + i
        cases.append(case)
    return cases


def _run_child(spec: dict, tmp_path) -> dict[int, tuple[str, str]]:
    """Run one chunk; returns {id: (outcome, detail)}. A death by signal fails the test
    naming the case."""
    spec_path = tmp_path / f"spec-{spec['cases'][0]['id']}.json"
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(spec_path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    results, running = {}, None
    for line in proc.stdout.splitlines():
        parts = line.split(" ", 3)
        if parts[0] == "START":
            running = int(parts[1])
        elif parts[0] == "RESULT":
            results[int(parts[1])] = (parts[2], parts[3] if len(parts) > 3 else "")
            running = None
    if proc.returncode != 0:
        case = next((c for c in spec["cases"] if c["id"] == running), None)
        how = (f"killed by signal {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
               else f"exited {proc.returncode}")
        raise AssertionError(f"{spec['kind']} fuzz child {how} in case {case}: "
                             f"{proc.stderr.strip()[-500:]}")
    assert "DONE" in proc.stdout, proc.stderr[-500:]
    return results


def test_fuzz_harness_detects_a_signal_death(lif2_vmfb, tmp_path):
    ref = tmp_path / "ref.npz"
    np.savez(ref, x=_x(), out=np.zeros(1))
    spec = {"kind": "vmfb", "good": lif2_vmfb, "work": str(tmp_path), "reference": str(ref),
            "suffix": ".vmfb", "artifact": None,
            "cases": [{"id": 0, "op": "truncate", "len": 10}, {"id": 1, "op": "selfkill"}]}
    with pytest.raises(AssertionError, match=r"killed by signal SIGSEGV in case \{'id': 1"):
        _run_child(spec, tmp_path)


def test_fuzz_damaged_artifacts_and_checkpoints(lif2_vmfb, lif2_xla, train_vmfb, checkpoint,
                                                tmp_path):
    """Bit flips, byte scrambles and truncations of a .vmfb, an XLA artifact and a
    checkpoint, each loaded and run (forward; load_checkpoint + train_step) in a
    subprocess: every case is a one-line error naming the file (a checkpoint's learner
    left unchanged) or the undamaged file's exact result. Never a signal, a raw
    exception or a NaN."""
    start = time.time()
    x, t = _x(7), _t(7)
    refs = {}
    for kind, path in (("vmfb", lif2_vmfb), ("xla", lif2_xla)):
        refs[kind] = {"x": x, "out": tracec.runtime.load(path).forward(x)}
    learner = tracec.runtime.load(train_vmfb)
    learner.load_checkpoint(checkpoint)
    loss, out = learner.train_step(x, t)
    refs["checkpoint"] = {"x": x, "t": t, "loss": np.float32(loss), "out": out}
    goods = {"vmfb": lif2_vmfb, "xla": lif2_xla, "checkpoint": checkpoint}
    suffix = {"vmfb": ".vmfb", "xla": ".xla", "checkpoint": ".npz"}

    rng = np.random.default_rng(FUZZ_SEED)
    counts: dict[str, dict[str, int]] = {}
    bad: list[str] = []
    next_id = 0
    for kind, n in FUZZ_CASES.items():
        ref_path = tmp_path / f"ref-{kind}.npz"
        np.savez(ref_path, **refs[kind])
        cases = _fuzz_cases(rng, os.path.getsize(goods[kind]), n, next_id)
        next_id += n
        counts[kind] = {}
        for i in range(0, n, CHUNK):
            spec = {"kind": kind, "good": goods[kind], "work": str(tmp_path),
                    "reference": str(ref_path), "suffix": suffix[kind],
                    "artifact": train_vmfb, "cases": cases[i:i + CHUNK]}
            results = _run_child(spec, tmp_path)
            for case in spec["cases"]:
                outcome, detail = results.get(case["id"], ("no-result", ""))
                counts[kind][outcome] = counts[kind].get(outcome, 0) + 1
                if outcome not in ("error", "same"):
                    bad.append(f"{kind} {case}: {outcome} {detail}")
    total = sum(sum(c.values()) for c in counts.values())
    summary = (f"fuzz (seed {FUZZ_SEED}): {total} cases in {time.time() - start:.0f} s: "
               + "; ".join(f"{k} {sum(c.values())}: " + ", ".join(f"{o} {n}" for o, n in sorted(c.items()))
                           for k, c in counts.items()))
    print("\n" + summary)
    assert total >= 200, summary
    assert not bad, summary + "\n" + "\n".join(bad[:20])


def test_a_model_iree_aggressive_fusion_breaks_still_compiles_and_learns_the_same(tmp_path):
    """IREE 3.13's aggressive fusion, fusing across the unrolled steps of an ALIF
    training loop (--fuse-steps), builds a region whose operand does not dominate its
    use and iree-compile fails. tracec compiles such a module once more without
    aggressive fusion and says so; it learns exactly what the default artifact learns."""
    model = os.path.join(ROOT, "tests", "models", "alif_recomputed.py")
    arts = {fs: tracec.compile(model, algorithm="es-d-rtrl", optimizer="adam", update_every=8,
                               fuse_steps=fs, use_cache=False) for fs in (False, True)}
    said = [w for w in arts[True].warnings if "aggressive fusion failed" in w]
    assert len(said) == 1 and "alif_recomputed.py" in said[0] and "--no-fuse-steps" in said[0]
    assert not [w for w in arts[False].warnings if "aggressive fusion" in w]
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(21, 4, 6)).astype(np.float32)
    ys = rng.integers(0, 3, size=(21, 4)).astype(np.int32)
    learners = {}
    for fs, art in arts.items():
        path = str(tmp_path / f"fused{fs}.vmfb")
        art.save(path)
        learners[fs] = tracec.runtime.load(path)
    initial = {n: v.copy() for n, v in learners[False].params.items()}
    losses = {fs: np.asarray(l.train_sequence(xs, ys)) for fs, l in learners.items()}
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-5, atol=1e-6)
    for name, value in learners[False].params.items():
        np.testing.assert_allclose(learners[True].params[name], value, rtol=1e-5, atol=1e-6)
    assert any(np.any(learners[False].params[n] != v) for n, v in initial.items())  # it learned


def test_default_fused_steps_fall_back_to_steps_apart_where_iree_fusion_breaks(tmp_path):
    """With updates at least 8 iterations apart a learning rule's unrolled steps are fused
    by default (8 per iteration). On the ALIF loop whose fused form IREE's aggressive
    fusion breaks, tracec lowers the loop again with its steps apart, keeps aggressive
    fusion and says nothing: the artifact learns what --no-fuse-steps learns, bit for
    bit. On lif2 the default stays fused: fewer fusion barriers than --no-fuse-steps."""
    model = os.path.join(ROOT, "tests", "models", "alif_recomputed.py")
    opts = dict(algorithm="es-d-rtrl", optimizer="adam", update_every=64, use_cache=False)
    arts = {"auto": tracec.compile(model, **opts),
            "apart": tracec.compile(model, fuse_steps=False, **opts)}
    assert arts["auto"].manifest["options"]["scan_unroll"] == 8
    assert arts["auto"].manifest["options"]["fuse_steps"] is None
    assert arts["auto"].warnings == [] and arts["apart"].warnings == []
    barrier = '"iree_tensor_ext.compute_barrier.start"'
    counts = [arts[name].ir["iree-input"].count(barrier) for name in ("auto", "apart")]
    assert counts[0] == counts[1] > 0
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(150, 4, 6)).astype(np.float32)
    ys = rng.integers(0, 3, size=(150, 4)).astype(np.int32)
    learners = {}
    for name, art in arts.items():
        art.save(str(tmp_path / f"{name}.vmfb"))
        learners[name] = tracec.runtime.load(str(tmp_path / f"{name}.vmfb"))
    losses = {name: np.asarray(l.train_sequence(xs, ys)) for name, l in learners.items()}
    np.testing.assert_array_equal(losses["auto"], losses["apart"])
    for name, value in learners["apart"].params.items():
        np.testing.assert_array_equal(learners["auto"].params[name], value)
    lif = {fs: tracec.compile(LIF2, emit="iree-input", fuse_steps=fs, **opts).ir["iree-input"]
           for fs in (None, False)}
    assert lif[None].count(barrier) < lif[False].count(barrier)
