"""tracec vs braintrace vs JAX BPTT on the same networks, side by side.

    python -m benchmarks.side_by_side                # the full configuration (make bench-all)
    python -m benchmarks.side_by_side --accuracy     # also the learning curves on examples/tasks.py
    python -m benchmarks.side_by_side --quick        # tiny H, T, repeats: an end-to-end check
    python -m benchmarks.side_by_side --sections memory   # redo one section, keep the others
    python -m benchmarks.side_by_side --report-only  # rewrite table and plots from the JSON

Sections (``--sections``; ``--accuracy`` adds the last one):

- ``time``: per network (``--networks lif_v:64 alif_v:64 lif:64 lif:128 lif:256 alif:64``; ``lif_v`` and
  ``alif_v``: the lif network and an ALIF network as braintrace's own examples write them, see
  benchmarks/braintrace_side.py's ``build_idiomatic_net``; batch 32, T steps) the time per step of tracec ``forward_sequence`` and ``train_sequence``
  (ES-D-RTRL and D-RTRL, ``--optimizer`` SGD or Adam, ``--update-every T``) on IREE
  llvm-cpu and on XLA; JAX ``jax.jit(lax.scan)`` (forward) and ``jax.jit(jax.value_and_grad)``
  through it plus the optimizer step (BPTT); braintrace ``pp_prop`` / ``D_RTRL`` and
  brainstate BPTT (one iteration: reset, T steps, one optimizer step, as tracec) in every
  benchmark venv (braintrace 0.2.6 in .venv-bench, its newest release in .venv-bench312). Median of ``--repeats`` calls with
  min..max; the first call is excluded and reported as ``first_call_s``. In-process
  for tracec and JAX; braintrace runs in its own venv, one fresh process each. D-RTRL
  (both tools) only up to ``--drtrl-max-H`` (128), braintrace's D_RTRL at
  ``--bt-drtrl-T`` (100) steps: both are slow; the table says where.
- ``compile``: ``tracec.compile(examples/lif2.py)`` per algorithm and target in a fresh
  process (jax imported first, imports not counted): cold (empty ``TRACEC_CACHE_DIR``),
  cached in the same process, and cached in a new process.
- ``memory``: peak RSS of one fresh process per (tool, T) that trains once over T steps
  (``--memory-network``, ``--memory-T``): tracec ES-D-RTRL and D-RTRL (llvm-cpu), JAX BPTT
  (benchmarks/memory_vs_t.py's ``peak_rss``), braintrace pp_prop and brainstate BPTT.
- ``accuracy``: test accuracy per update for ``--iterations`` (400) updates on ``--task``
  (benchmarks/learning_curves.py; Adam, the same lr for every tool) of tracec's accuracy
  network ``--accuracy-model`` (examples/task_lif.py; batch 64) and braintrace_side.py's
  copy of it ``--accuracy-network`` (task_lif:32), which starts from tracec's initial
  parameters (passed as an .npz); examples/task_alif.py pairs with task_alif:32.

Every measurement is one record (a flat dict) in benchmarks/results/side_by_side.json::

    {"section": "time" | "compile" | "memory" | "accuracy",
     "tool": "tracec" | "jax" | "braintrace" | "brainstate",
     "algorithm": "forward" | "es-d-rtrl" | "d-rtrl" | "bptt",
     "target": "llvm-cpu" | "xla" | "jax.jit", "variant": "lif" | "alif", "H": 64,
     "batch": 32, "T": 500, ...measured fields..., "skipped"?: why, "error"?: what}

benchmarks/side_by_side_report.py turns the records into side_by_side.md (the table and
the issue's targets, met or missed); benchmarks/plot_side_by_side.py draws the PNGs with
matplotlib in the benchmark venv (tracec does not depend on matplotlib).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

from benchmarks import common
from benchmarks.common import ROOT, make_data

SECTIONS = ("time", "compile", "memory", "accuracy")
RULES = ("es-d-rtrl", "d-rtrl")
# braintrace_side.py's algorithm names -> ours
FROM_BRAINTRACE = {"es_d_rtrl": "es-d-rtrl", "d_rtrl": "d-rtrl", "bptt": "bptt"}
TO_BRAINTRACE = {v: k for k, v in FROM_BRAINTRACE.items()}
EXAMPLE = os.path.join(ROOT, "examples", "lif2.py")
LR_SGD = 1e-3
MEMORY_CHUNK = 50  # tracec's memory rows feed the input this many steps per call

# --quick: every section on tiny sizes, written beside the build outputs, not to results/.
QUICK = dict(networks=["lif_v:16", "lif:16", "alif:32"], T=50, repeats=2, passes=1, bt_drtrl_T=20,
             drtrl_max_H=16,
             memory_network="lif:16", memory_T=[50, 200], iterations=3,
             out_dir=os.path.join(ROOT, "build", "side_by_side_quick"))


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def network(text: str, variants=("lif", "alif", "lif_v", "alif_v")) -> tuple[str, int]:
    """'lif:64' -> ('lif', 64)"""
    variant, _, H = text.partition(":")
    if variant not in variants or not H.isdigit():
        raise argparse.ArgumentTypeError(f"a network is VARIANT:H with VARIANT one of "
                                         f"{', '.join(variants)}, got {text!r}")
    return variant, int(H)


# braintrace_side.py's networks for the accuracy section: also tracec's accuracy networks
ACCURACY_VARIANTS = ("lif", "alif", "task_lif", "task_alif")
# the braintrace network that mirrors each model file (--accuracy-network's default)
ACCURACY_NETWORKS = {"task_lif.py": "task_lif:32", "task_alif.py": "task_alif:32", "lif2.py": "lif:64"}


def accuracy_network(text: str) -> tuple[str, int]:
    """'task_lif:32' -> ('task_lif', 32)"""
    return network(text, ACCURACY_VARIANTS)


# --------------------------------------------------------------------------- records

def key(section, tool, algorithm, target, variant, H, **more) -> dict:
    return dict(section=section, tool=tool, algorithm=algorithm, target=target, variant=variant,
                H=H, **more)


def measured(k: dict, fn) -> dict:
    """``k`` plus what ``fn()`` returns, or plus ``error`` if it raised (the run goes on)."""
    what = " ".join(str(k[f]) for f in ("section", "variant", "H", "tool", "algorithm", "target"))
    log(f"side_by_side: {what} T={k.get('T', '')} ...")
    try:
        rec = {**k, **fn()}
    except Exception as e:  # noqa: BLE001 - one failed cell must not lose the others
        log(traceback.format_exc(limit=3))
        return {**k, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]}
    if "us_per_step_median" in rec:
        log(f"side_by_side:   {rec['us_per_step_median']:.1f} µs/step")
    return rec


def per_step(first_s: float, runs: list[float], T: int) -> dict:
    """Timing fields from the first call's and the repeats' seconds for T steps each."""
    us = lambda s: s / T * 1e6  # noqa: E731
    return {"us_per_step_median": us(statistics.median(runs)), "us_per_step_min": us(min(runs)),
            "us_per_step_max": us(max(runs)), "repeats": len(runs), "call_s": runs,
            "first_call_s": first_s}


def from_braintrace(r: dict, section: str) -> dict:
    """A braintrace_side.py record in our format."""
    out = key(section, r["tool"], FROM_BRAINTRACE[r["algorithm"]], "jax.jit", r["variant"], r["H"],
              batch=r["batch"], T=r["T"], peak_rss_mib=r["peak_rss_mib"],
              braintrace_algorithm=r["braintrace_algorithm"],
              braintrace_version=r["versions"]["braintrace"], python=r["versions"]["python"],
              **({"form": r["form"]} if "form" in r else {}))
    if section == "time":
        out.update({f: r[f] for f in ("us_per_step_median", "us_per_step_min", "us_per_step_max",
                                      "repeats")},
                   call_s=r["iteration_s"], first_call_s=r["first_call_s"], build_s=r["build_s"])
    return out


def braintrace_records(section: str, args: list[str], expected: list[dict], timeout: float,
                       python: str | None = None) -> list[dict]:
    """Run braintrace_side.py ARGS in the benchmark venv of ``python`` (default the first);
    one record per ``expected`` key (matched on algorithm, variant, H, T), with ``skipped``
    when the benchmark venv is missing and ``error`` when that measurement failed."""
    got = common.braintrace_side(args, timeout=None, python=python)
    if got is None:
        return [{**k, "skipped": "no benchmark venv (make bench-venv)"} for k in expected]
    recs = [from_braintrace(r, section) for r in got]
    out = []
    for k in expected:
        match = [r for r in recs if all(r[f] == k[f] for f in ("algorithm", "variant", "H", "T"))]
        k = {**k, "braintrace_version": common.braintrace_version(python) if python else None}
        out.append(match[0] if match else {**k, "error": f"braintrace_side.py failed or timed out "
                                                          f"(> {timeout:.0f} s); see its stderr"})
    return out


def bt_args(cmd: str, variant: str, H: int, algorithms, cfg, batch: int | None = None,
            **flags) -> list[str]:
    args = [cmd, "--variant", variant, "--H", str(H), "--batch", str(batch or cfg.batch),
            "--algorithm", *[TO_BRAINTRACE[a] for a in algorithms]]
    for flag, value in flags.items():
        values = value if isinstance(value, list) else [value]
        args += [f"--{flag}", *map(str, values)]
    return args


# --------------------------------------------------------------------------- time

_ARTIFACTS = itertools.count()


def artifact(model, algorithm: str, target: str, tmp: str, **options) -> str:
    """Compile ``model`` (tracec's cache applies) and save it under ``tmp``; its path."""
    import tracec

    ext = "xla" if target == "xla" else "vmfb"
    path = os.path.join(tmp, f"{algorithm}-{next(_ARTIFACTS)}.{ext}")
    tracec.compile(model, algorithm=algorithm, target=target, **options).save(path)
    return path


def time_tracec(model, algorithm: str, target: str, xs, ys, cfg, tmp: str) -> dict:
    import tracec.runtime

    t0 = time.perf_counter()
    path = artifact(model, algorithm, target, tmp, decay=cfg.decay, optimizer=cfg.optimizer, lr=LR_SGD,
                    update_every=len(xs))
    compile_s = time.perf_counter() - t0
    learner = tracec.runtime.load(path)
    if algorithm == "forward":
        def call():
            learner.reset()
            learner.forward_sequence(xs)
    else:
        def call():
            learner.reset()
            learner.train_sequence(xs, ys)
    return {**per_step(*common.timed_calls(call, cfg.repeats), len(xs)), "compile_s": compile_s}


def jax_calls(model, xs, ys, optimizer: str = "sgd"):
    """JAX's forward (jax.jit(lax.scan)) and BPTT training iteration (jax.jit of
    jax.value_and_grad through it plus the SGD or Adam step, as JAX users write it), each as
    a call that waits for its result."""
    import jax
    import jax.numpy as jnp

    from benchmarks.networks import bptt_loss

    batch = xs.shape[1]
    params = model.init_params(jax.random.PRNGKey(0))
    mask = jnp.ones((xs.shape[0],), jnp.float32)
    xs, ys = jnp.asarray(xs), jnp.asarray(ys)

    @jax.jit
    def forward(params, xs):
        return jax.lax.scan(lambda s, x: model.step(params, s, x), model.init_state(batch), xs)[1]

    @jax.jit
    def train(params, opt_state, xs, ys):
        loss, g = jax.value_and_grad(lambda p: bptt_loss(model, p, xs, ys, mask))(params)
        if optimizer == "sgd":
            return jax.tree.map(lambda p, g: p - LR_SGD * g, params, g), opt_state, loss
        # Adam (b1 0.9, b2 0.999, eps 1e-8, bias-corrected), as tracec's and braintools' Adam
        m, v, t = opt_state
        t = t + 1
        m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
        v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
        step = LR_SGD * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        params = jax.tree.map(lambda p, m, v: p - step * m / (jnp.sqrt(v) + 1e-8), params, m, v)
        return params, (m, v, t), loss

    zeros = jax.tree.map(jnp.zeros_like, params)
    box = [params, (zeros, zeros, jnp.zeros((), jnp.float32))]

    def train_call():
        box[0], box[1], _ = jax.block_until_ready(train(box[0], box[1], xs, ys))

    return {"forward": lambda: jax.block_until_ready(forward(params, xs)), "bptt": train_call}


def drtrl_skipped(cfg) -> str:
    return (f"H > --drtrl-max-H {cfg.drtrl_max_H}: D-RTRL's traces are [B, H, H] per recurrent "
            "weight, slow at large H (--drtrl-max-H 256 measures H=256)")


def time_section(cfg) -> list[dict]:
    """``--passes`` passes over every network and tool; each cell pools the repeats of
    all passes. This 2-core machine's speed drifts by up to ~1.5x over minutes, and one
    pass measures the tools of a network minutes apart: pooling passes spreads that
    drift over every tool instead of handing it to whichever ran at the slow moment."""
    passes = []
    for p in range(cfg.passes):
        log(f"side_by_side: time, pass {p + 1}/{cfg.passes}")
        passes.append(time_pass(cfg))
    return [pooled(recs) for recs in zip(*passes)]


def pooled(recs: tuple) -> dict:
    """One cell from its record in each pass: the repeats pooled (median, min, max over
    all of them), the first pass's compile time, each pass's median kept."""
    timed = [r for r in recs if "call_s" in r]
    if len(timed) < len(recs):
        return next(r for r in recs if "call_s" not in r)  # an error or a skip: report it
    calls = [c for r in timed for c in r["call_s"]]
    us = [c / r["T"] * 1e6 for r in timed for c in r["call_s"]]
    return {**timed[0], "us_per_step_median": statistics.median(us), "us_per_step_min": min(us),
            "us_per_step_max": max(us), "repeats": len(calls), "call_s": calls,
            "passes": len(timed), "pass_medians_us": [r["us_per_step_median"] for r in timed]}


def time_pass(cfg) -> list[dict]:
    from benchmarks.networks import make_model

    recs = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant, H in cfg.networks:
            model = make_model(H, variant, cfg.batch)
            xs, ys = make_data(cfg.T, cfg.batch)
            for target in cfg.targets:
                for alg in ("forward", *RULES):
                    k = key("time", "tracec", alg, target, variant, H, batch=cfg.batch, T=cfg.T)
                    if alg == "d-rtrl" and H > cfg.drtrl_max_H:
                        recs.append({**k, "skipped": drtrl_skipped(cfg)})
                        continue
                    recs.append(measured(k, lambda: time_tracec(model, alg, target, xs, ys, cfg, tmp)))
            calls = jax_calls(model, xs, ys, cfg.optimizer)
            for alg in ("forward", "bptt"):
                k = key("time", "jax", alg, "jax.jit", variant, H, batch=cfg.batch, T=cfg.T)
                recs.append(measured(k, lambda: per_step(*common.timed_calls(calls[alg], cfg.repeats),
                                                         cfg.T)))
            recs += time_braintrace(cfg, variant, H)
    return recs


def time_braintrace(cfg, variant: str, H: int) -> list[dict]:
    """braintrace's rows in every benchmark venv (0.2.6, then the newest release)."""
    pys = common.bench_pythons()
    if not pys:
        return braintrace_records("time", [], [key("time", "braintrace", a, "jax.jit", variant, H,
                                                   batch=cfg.batch, T=cfg.T)
                                               for a in ("es-d-rtrl", "d-rtrl")], cfg.timeout)
    return [r for py in pys for r in time_braintrace_venv(cfg, variant, H, py)]


def time_braintrace_venv(cfg, variant: str, H: int, py: str) -> list[dict]:
    def expected(alg, T):
        tool = "brainstate" if alg == "bptt" else "braintrace"
        return key("time", tool, alg, "jax.jit", variant, H, batch=cfg.batch, T=T)

    bt = f"braintrace {common.braintrace_version(py)}"
    flags = dict(repeats=cfg.repeats, timeout=cfg.timeout, optimizer=cfg.optimizer)
    log(f"side_by_side: time {variant} {H} {bt} pp_prop, brainstate bptt T={cfg.T} ...")
    recs = braintrace_records("time", bt_args("time", variant, H, ("es-d-rtrl", "bptt"), cfg, T=cfg.T,
                                              **flags),
                              [expected("es-d-rtrl", cfg.T), expected("bptt", cfg.T)], cfg.timeout, py)
    k = expected("d-rtrl", cfg.bt_drtrl_T)
    if H > cfg.drtrl_max_H:
        return recs + [{**k, "skipped": drtrl_skipped(cfg)}]
    log(f"side_by_side: time {variant} {H} {bt} D_RTRL T={cfg.bt_drtrl_T} ...")
    return recs + braintrace_records("time", bt_args("time", variant, H, ("d-rtrl",), cfg,
                                                     T=cfg.bt_drtrl_T, **flags), [k], cfg.timeout, py)


# --------------------------------------------------------------------------- compile

COMPILE_CHILD = r"""
import json, os, sys, time
spec = json.loads(sys.argv[1])
os.environ["TRACEC_CACHE_DIR"], os.environ["TRACEC_CACHE"] = spec["cache"], "1"
t0 = time.perf_counter()
import jax, tracec, tracec.driver  # a model file imports jax anyway; not compile time
import_s = time.perf_counter() - t0
times = []
for _ in range(spec["calls"]):
    t0 = time.perf_counter()
    tracec.compile(spec["model"], algorithm=spec["algorithm"], target=spec["target"])
    times.append(time.perf_counter() - t0)
print(json.dumps({"import_s": import_s, "compile_s": times}))
"""


def compile_times(model_path: str, algorithm: str, target: str, timeout: float) -> dict:
    """Cold (empty cache) and cached compile in one fresh process, then cached in another."""
    def child(cache: str, calls: int) -> dict:
        spec = dict(model=model_path, algorithm=algorithm, target=target, cache=cache, calls=calls)
        p = subprocess.run([sys.executable, "-c", COMPILE_CHILD, json.dumps(spec)], cwd=ROOT,
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "failed")
        return json.loads(p.stdout.strip().splitlines()[-1])

    with tempfile.TemporaryDirectory() as cache:
        first = child(cache, 2)
        again = child(cache, 1)
    return {"cold_s": first["compile_s"][0], "cached_s": first["compile_s"][1],
            "cached_new_process_s": again["compile_s"][0], "import_s": first["import_s"]}


def compile_section(cfg) -> list[dict]:
    model = os.path.relpath(cfg.compile_model, ROOT)
    # examples/lif2.py is the lif:64 network of the time section
    variant, H = ("lif", 64) if os.path.samefile(cfg.compile_model, EXAMPLE) else (model, None)
    return [measured(key("compile", "tracec", alg, target, variant, H, model=model),
                     lambda: compile_times(cfg.compile_model, alg, target, cfg.timeout))
            for target in cfg.targets for alg in ("forward", *RULES)]


# --------------------------------------------------------------------------- memory

def memory_section(cfg) -> list[dict]:
    from benchmarks.memory_vs_t import peak_rss
    from benchmarks.networks import make_model

    variant, H = cfg.memory_network
    recs = []
    with tempfile.TemporaryDirectory() as tmp:
        for alg in RULES:
            path = artifact(make_model(H, variant, cfg.batch), alg, "llvm-cpu", tmp, decay=cfg.decay,
                            optimizer="sgd", lr=LR_SGD, update_every=10**9)
            for T in cfg.memory_T:
                # online data: the T steps arrive MEMORY_CHUNK at a time (one train_sequence
                # call each); state, traces and counters stay on the device in between
                chunk = MEMORY_CHUNK if T % MEMORY_CHUNK == 0 else None
                k = key("memory", "tracec", alg, "llvm-cpu", variant, H, batch=cfg.batch, T=T,
                        chunk=chunk)
                recs.append(measured(k, lambda: peak_rss("tracec", T, artifact=path, batch=cfg.batch,
                                                         timeout=cfg.timeout, chunk=chunk)))
    for T in cfg.memory_T:
        k = key("memory", "jax", "bptt", "jax.jit", variant, H, batch=cfg.batch, T=T)
        recs.append(measured(k, lambda: peak_rss("bptt", T, variant=variant, H=H, batch=cfg.batch,
                                                 timeout=cfg.timeout)))
    expected = [key("memory", "brainstate" if alg == "bptt" else "braintrace", alg, "jax.jit", variant,
                    H, batch=cfg.batch, T=T) for T in cfg.memory_T for alg in ("es-d-rtrl", "bptt")]
    for py in common.bench_pythons() or [None]:
        log(f"side_by_side: memory {variant} {H} braintrace pp_prop, brainstate bptt T={cfg.memory_T} ...")
        recs += braintrace_records("memory", bt_args("time", variant, H, ("es-d-rtrl", "bptt"), cfg,
                                                     T=cfg.memory_T, repeats=1, timeout=cfg.timeout),
                                   expected, cfg.timeout, py)
    return recs


# --------------------------------------------------------------------------- accuracy

def curve_fields(curve: dict) -> dict:
    acc = curve["accuracy"]
    return {**curve, "final_accuracy": acc[-1], "accuracy_last10_mean": sum(acc[-10:]) / len(acc[-10:])}


def accuracy_section(cfg) -> list[dict]:
    from benchmarks.learning_curves import jax_bptt_curve, load_model, tracec_curve

    variant, H = cfg.accuracy_network
    batch = load_model(cfg.accuracy_model).input.shape[0]  # the model's (64 in examples/task_*.py)
    common_fields = dict(task=cfg.task, iterations=cfg.iterations, lr=cfg.lr, optimizer="adam",
                         decay=cfg.accuracy_decay, batch=batch,
                         model=os.path.relpath(cfg.accuracy_model, ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        # tracec's initial parameters (seed 0; JAX BPTT's init_params(PRNGKey(0)) are the same),
        # written by its first run: braintrace starts from the same weights
        params = os.path.join(tmp, "params.npz")
        recs = [measured(key("accuracy", "tracec", alg, "llvm-cpu", variant, H, **common_fields),
                         lambda: curve_fields(tracec_curve(cfg.accuracy_model, alg, cfg.task,
                                                           cfg.iterations, cfg.lr, cfg.accuracy_decay,
                                                           params_out=params)))
                for alg in RULES]
        recs.append(measured(key("accuracy", "jax", "bptt", "jax.jit", variant, H, **common_fields),
                             lambda: curve_fields(jax_bptt_curve(cfg.accuracy_model, cfg.task,
                                                                 cfg.iterations, cfg.lr))))
        log(f"side_by_side: accuracy {variant} {H} braintrace / brainstate ...")
        flags = dict(task=cfg.task, iterations=cfg.iterations, lr=cfg.lr, decay=cfg.accuracy_decay)
        same = os.path.exists(params)  # not when tracec failed
        if same:
            flags["params"] = params
        got = common.braintrace_side(bt_args("accuracy", variant, H, (*RULES, "bptt"), cfg,
                                             batch=batch, **flags))
    for alg in (*RULES, "bptt"):
        k = key("accuracy", "brainstate" if alg == "bptt" else "braintrace", alg, "jax.jit", variant, H,
                **common_fields, network=f"benchmarks/braintrace_side.py {variant}:{H}",
                initial_params="tracec's" if same else "braintrace_side.py's (seed 0)")
        match = [r for r in got or [] if FROM_BRAINTRACE[r["algorithm"]] == alg]
        if got is None:
            recs.append({**k, "skipped": "no benchmark venv (make bench-venv)"})
        elif not match:
            recs.append({**k, "error": "braintrace_side.py accuracy failed; see its stderr"})
        else:
            r = match[0]
            recs.append({**k, **curve_fields({f: r[f] for f in ("accuracy", "loss", "iteration_s",
                                                                "wall_s")})})
    return recs


# --------------------------------------------------------------------------- run, write

SECTION_FN = {"time": time_section, "compile": compile_section, "memory": memory_section,
              "accuracy": accuracy_section}


def versions() -> dict:
    from importlib.metadata import version

    from tracec.versions import tool_versions

    out = {"tracec venv": {**tool_versions(), "iree-base-runtime": version("iree-base-runtime"),
                           "numpy": version("numpy"), "python": platform.python_version()}}
    for py in common.bench_pythons():
        p = subprocess.run([py, common.BRAINTRACE_SIDE, "info"], capture_output=True, text=True)
        name = "benchmark venv" + ("" if py == common.bench_python() else f" {os.path.relpath(py, ROOT)}")
        out[name] = json.loads(p.stdout) if p.returncode == 0 else p.stderr[-300:]
    return out


def machine() -> dict:
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    return {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}


def load_results(path: str) -> dict:
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"sections": {}}


def write_outputs(results: dict, out_dir: str) -> None:
    from benchmarks.side_by_side_report import markdown

    common.write_text(os.path.join(out_dir, "side_by_side.json"), json.dumps(results, indent=1) + "\n")
    text = markdown(results)
    common.write_text(os.path.join(out_dir, "side_by_side.md"), text)
    print(text)
    plot(out_dir)


def plot(out_dir: str) -> None:
    """The PNGs, drawn with matplotlib in the benchmark venv from side_by_side.json."""
    py = common.bench_python()
    if py is None:
        log("side_by_side: plots skipped (they are drawn with the benchmark venv's matplotlib)")
        return
    p = subprocess.run([py, os.path.join(ROOT, "benchmarks", "plot_side_by_side.py"),
                        os.path.join(out_dir, "side_by_side.json"), out_dir])
    if p.returncode != 0:
        log("side_by_side: plotting failed (see above); the table and the JSON are written")


def update_readme(out_dir: str, path: str = os.path.join(ROOT, "benchmarks", "README.md")) -> None:
    """Replace benchmarks/README.md's block between the side_by_side markers with the latest summary."""
    from benchmarks.side_by_side_report import README_BEGIN, README_END, readme_block

    text = open(path).read()
    if README_BEGIN not in text or README_END not in text:
        log(f"side_by_side: README.md has no {README_BEGIN} ... {README_END} block; not updated")
        return
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    block = readme_block(load_results(os.path.join(out_dir, "side_by_side.json")),
                         os.path.relpath(os.path.join(out_dir, "side_by_side.md"), ROOT))
    common.write_text(path, head + README_BEGIN + "\n" + block + README_END + tail)
    log("side_by_side: README.md updated")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny networks, T, repeats (lif_v:16 lif:16 alif:32, T=50, 2 repeats, D-RTRL up to H=16, "
                    "memory T 50 200, 3 updates), written to build/side_by_side_quick/: an "
                    "end-to-end check")
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=["time", "compile", "memory"],
                    help="what to measure; the JSON keeps the other sections of an earlier run")
    ap.add_argument("--accuracy", action="store_true", help="also the accuracy section")
    ap.add_argument("--report-only", action="store_true", help="measure nothing; rewrite md and PNGs")
    ap.add_argument("--update-readme", action="store_true",
                    help="replace benchmarks/README.md's side_by_side block with the latest summary")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks", "results"))
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per subprocess")
    g = ap.add_argument_group("time")
    g.add_argument("--networks", type=network, nargs="+",
                   default=["lif_v:64", "alif_v:64", "lif:64", "lif:128", "lif:256", "alif:64"],
                   help="VARIANT:H ... (lif_v, alif_v: braintrace's idiomatic form of a LIF, ALIF network)")
    g.add_argument("--variant", nargs="+", choices=["lif", "alif"],
                   help="with --H: the networks are every VARIANT × H (instead of --networks)")
    g.add_argument("--H", type=int, nargs="+", help="with --variant (default lif)")
    g.add_argument("--T", type=int, default=500)
    g.add_argument("--batch", type=int, default=32)
    g.add_argument("--repeats", type=int, default=5, help="timed calls per pass")
    g.add_argument("--passes", type=int, default=3,
                   help="passes over all networks and tools, their repeats pooled")
    g.add_argument("--targets", nargs="+", default=["llvm-cpu", "xla"], choices=["llvm-cpu", "xla"])
    g.add_argument("--decay", type=float, default=0.9, help="ES-D-RTRL trace decay α")
    g.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"],
                   help="the optimizer step of every tool's iteration (lr 1e-3)")
    g.add_argument("--drtrl-max-H", type=int, default=128,
                   help="skip D-RTRL (tracec and braintrace) above this H (256 adds ~10 min)")
    g.add_argument("--bt-drtrl-T", type=int, default=100,
                   help="T for braintrace D_RTRL (slow: ~10 ms/step at H=64)")
    g = ap.add_argument_group("compile")
    g.add_argument("--compile-model", default=EXAMPLE)
    g = ap.add_argument_group("memory")
    g.add_argument("--memory-network", type=network, default="lif:64")
    g.add_argument("--memory-T", type=int, nargs="+", default=[100, 1000, 10000])
    g = ap.add_argument_group("accuracy")
    from benchmarks.learning_curves import (DEFAULT_DECAY, DEFAULT_ITERATIONS, DEFAULT_LR,
                                            DEFAULT_MODEL, DEFAULT_TASK)
    g.add_argument("--accuracy-model", default=DEFAULT_MODEL,
                   help="tracec's and JAX's model file (examples/train_online.py's default, "
                        "examples/task_lif.py)")
    g.add_argument("--accuracy-network", type=accuracy_network,
                   help="braintrace's network for the same model (benchmarks/braintrace_side.py); "
                        "default: task_lif:32 for examples/task_lif.py, task_alif:32 for "
                        "examples/task_alif.py, lif:64 for examples/lif2.py")
    g.add_argument("--task", default=DEFAULT_TASK, choices=["delayed_match", "evidence_accumulation"])
    g.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    g.add_argument("--lr", type=float, default=DEFAULT_LR, help="Adam's learning rate, every tool")
    g.add_argument("--accuracy-decay", type=float, default=DEFAULT_DECAY,
                   help="ES-D-RTRL trace decay α, tracec and braintrace")
    if "--quick" in (argv if argv is not None else sys.argv[1:]):
        ap.set_defaults(**QUICK)
    cfg = ap.parse_args(argv)
    cfg.networks = [network(n) if isinstance(n, str) else n for n in cfg.networks]
    if cfg.variant or cfg.H:
        cfg.networks = [(v, H) for v in (cfg.variant or ["lif"]) for H in (cfg.H or [64])]
    if isinstance(cfg.memory_network, str):
        cfg.memory_network = network(cfg.memory_network)
    if cfg.accuracy_network is None:
        name = os.path.basename(cfg.accuracy_model)
        if name not in ACCURACY_NETWORKS:
            ap.error(f"--accuracy-network: no default for {name}; give the braintrace network "
                     f"(VARIANT:H, VARIANT one of {', '.join(ACCURACY_VARIANTS)})")
        cfg.accuracy_network = accuracy_network(ACCURACY_NETWORKS[name])
    if cfg.accuracy and "accuracy" not in cfg.sections:
        cfg.sections = [*cfg.sections, "accuracy"]
    return cfg


def main(argv=None) -> int:
    cfg = parse_args(argv)
    path = os.path.join(cfg.out_dir, "side_by_side.json")
    results = load_results(path)
    if not cfg.report_only:
        command = "python -m benchmarks.side_by_side " + shlex.join(sys.argv[1:] if argv is None else argv)
        for section in cfg.sections:
            records = SECTION_FN[section](cfg)
            results["sections"][section] = {
                "command": command.strip(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
                "machine": machine(), "records": records}
            # written after every section, so that a long run that stops keeps what it measured
            common.write_text(path, json.dumps(results, indent=1) + "\n")
        results["versions"] = versions()
    write_outputs(results, cfg.out_dir)
    if cfg.update_readme:
        update_readme(cfg.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
