"""braintrace's side of the tracec-vs-braintrace benchmarks.

Runs with a benchmark venv's Python, never tracec's (braintrace is an optional
benchmark dependency: ``make bench-venv`` creates ``.venv-bench`` from
benchmarks/requirements-braintrace.txt, ``make bench-venv-312`` ``.venv-bench312`` from
benchmarks/requirements-braintrace-312.txt)::

    .venv-bench/bin/python benchmarks/braintrace_side.py time --H 64 --T 100 --repeats 3
    .venv-bench312/bin/python benchmarks/braintrace_side.py time --variant lif_v --H 64 --T 180
    .venv-bench/bin/python benchmarks/braintrace_side.py time --H 64 128 256 --variant lif alif \\
        --T 100 1000 10000 --algorithm es_d_rtrl d_rtrl bptt --out results.jsonl
    .venv-bench/bin/python benchmarks/braintrace_side.py accuracy --algorithm es_d_rtrl --iterations 60
    .venv-bench/bin/python benchmarks/braintrace_side.py accuracy --variant task_lif --H 32 \\
        --params PARAMS.npz --iterations 400 --lr 1e-3 --decay 0.98   # tracec's accuracy network
    .venv-bench/bin/python benchmarks/braintrace_side.py grads IN.npz OUT.npz   # for braintrace_parity.py
    .venv-bench/bin/python benchmarks/braintrace_side.py info

The network is the one of examples/lif2.py, written with brainstate modules whose
weights go through braintrace's ETP ops (``braintrace.matmul``,
``braintrace.element_wise``), so braintrace finds the same hidden groups and
parameter relations as tracec: per layer {v, z} (LIF) or {v, a, z} (ALIF), plus the
leaky readout {y}. One time step, per layer (``H`` neurons, batch 32, 40 inputs, 10
outputs, cross-entropy on the readout at every step)::

    LIF:   v = 0.9 v + x W_in + z W_rec + b;  z = H(v - 1);    v = v - z
    ALIF:  th = 1 + 1.8 a;  v = 0.9 v + x W_in + z W_rec + b;  z = H(v - th);
           v = v - z th;  a = 0.95 a + z
    readout: y = 0.8 y + z2 W_out

with H the Heaviside and the sigmoid surrogate α·s(1-s), s = σ(4x) (braintools'
``Sigmoid(alpha=4)``). Initial weights are drawn exactly as examples/lif2.py draws
them (same keys, same gains).

Variant ``lif_v`` is the lif network written the way braintrace's own examples write a
recurrent LIF network (``build_idiomatic_net``: brainpy.state's LIF, one
``braintrace.nn.Linear`` over ``[x, z]`` with the spike recomputed from the membrane,
``braintrace.nn.LeakyRateReadout``), trained as its pp_prop examples train
(``braintrace.compile(net, braintrace.pp_prop or braintrace.D_RTRL, x0, batch_size=B,
vmap=True)``, ``learner.etrace_grad`` over the whole sequence and the optimizer step, all
in one ``brainstate.transform.jit``). The same code runs on braintrace 0.2.6 (Python
3.11, .venv-bench) and 0.2.8 (Python 3.12, .venv-bench312): the APIs it uses did not
change between them. Its gradients come back under tracec's names (``tracec_grads``).
Variant ``alif_v`` is the same form with ``brainpy.state.ALIF`` as the neuron (alif's
constants; brainpy's ALIF step, see ``build_idiomatic_net``).

Variants ``task_lif`` and ``task_alif`` are the networks of tracec's accuracy tests,
examples/task_lif.py and examples/task_alif.py, step for step (batch 64, 40 inputs, 2
outputs, readout decay e^(-1/5), the reset through ``jax.lax.stop_gradient`` as the
models' ``tracec.stop_gradient``, and tracec.spike's strict Heaviside ``x > 0``)::

    task_lif:   v = d v + x W_in + z W_rec + b;  z = H(v - 1);  v = v - sg(z)
                d = e^(-1/τ) per neuron, τ spread geometrically from 20 to 200 steps;
                sigmoid surrogate α = 4
    task_alif:  th = 1 + β a;  v = e^(-1/30) v + x W_in + z W_rec + b;  z = H(v - th);
                v = v - sg(z) th;  a = e^(-1/500) a + z
                β = 0 for the first H/2 neurons, 0.1 for the rest; triangle surrogate
                max(0, 1-|x|) (braintools' ``ReluGrad(alpha=1, width=1)``)

``--params PATH.npz`` (keys: tracec's parameter names, 'l1/w_in', ...; what
``tracec.runtime.load(path).params`` holds) starts a network from given weights.

``time`` measures, per (variant, H, T, algorithm), one training *iteration*: reset the
network and traces, run T online steps accumulating the gradient
(``learner.etrace_grad``), one optimizer step (what tracec's ``train_sequence`` with
``--update-every T`` does). ``bptt`` is ``brainstate.transform.grad`` of the summed
loss of a ``brainstate.transform.for_loop`` over the same module (jax.grad through
lax.scan), then the same optimizer step. The first call (trace + XLA compile + one
run) is excluded from the repeats and reported as ``first_call_s``, and so is the second
(brainstate BPTT's jit compiles again there); ``compile_s`` is
``build_s`` (braintrace.compile: graph analysis) + ``first_call_s`` - median
iteration. Each measurement runs in a fresh subprocess by default so that
``peak_rss_mib`` (VmHWM, the process's peak RSS) is that measurement's alone.

Output: one JSON object per line on stdout (and appended to --out if given)::

    {"tool": "braintrace", "algorithm": "es_d_rtrl", "variant": "lif", "H": 64, "T": 100,
     "batch": 32, "repeats": 5, "us_per_step_median": ..., "us_per_step_min": ...,
     "us_per_step_max": ..., "iteration_s": [...], "compile_s": ..., "build_s": ...,
     "first_call_s": ..., "peak_rss_mib": ..., "versions": {...}}

``tool`` is "braintrace" for es_d_rtrl / d_rtrl and "brainstate" for bptt. Everything
else this script prints goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

B, N_IN, N_OUT = 32, 40, 10
TAU_MEM, TAU_OUT, V_TH = 0.9, 0.8, 1.0
BETA, RHO = 1.8, 0.95          # ALIF: threshold adaptation, as examples/zoo/alif.py
TASK_B = 64                    # examples/task_lif.py / task_alif.py: batch (N_IN is 40 there too)
# lif_v, alif_v: a recurrent LIF / ALIF network written as braintrace's own examples write
# it (build_idiomatic_net)
VARIANTS = ("lif", "alif", "task_lif", "task_alif", "lif_v", "alif_v")
ALGORITHMS = ("es_d_rtrl", "d_rtrl", "bptt")
# Our names -> braintrace's registry names (braintrace.compile); pp_prop is ES-D-RTRL.
BRAINTRACE_NAME = {"es_d_rtrl": "pp_prop", "d_rtrl": "d_rtrl"}
HERE = os.path.dirname(os.path.abspath(__file__))
# benchmarks/common.py is standard library only, so this venv can import it too
sys.path.insert(0, os.path.dirname(HERE))
from benchmarks import common  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- network

def constants(variant: str, H: int) -> dict:
    """One variant's step constants: membrane decay ``tau_mem`` (a number, or one per
    neuron), threshold adaptation ``beta`` (None: no adaptation state; a number or one per
    neuron) and its decay ``rho``, readout decay ``tau_out``, outputs ``n_out``, the
    surrogate as tracec.spike takes it (name, alpha), and ``task``: the reset goes through
    stop_gradient and the Heaviside is tracec.spike's ``x > 0`` (examples/task_*.py)."""
    import numpy as np

    if variant in ("lif", "alif", "lif_v", "alif_v"):  # examples/lif2.py, benchmarks/networks.py
        return dict(tau_mem=TAU_MEM, beta=BETA if variant in ("alif", "alif_v") else None, rho=RHO,
                    tau_out=TAU_OUT, n_out=N_OUT, surrogate=("sigmoid", 4.0), task=False)
    tau_out = float(np.exp(-1.0 / 5.0))
    if variant == "task_lif":  # examples/task_lif.py: tau from 20 to 200 steps, per neuron
        return dict(tau_mem=np.exp(-1.0 / np.geomspace(20.0, 200.0, H)).astype(np.float32),
                    beta=None, rho=None, tau_out=tau_out, n_out=2, surrogate=("sigmoid", 4.0),
                    task=True)
    if variant == "task_alif":  # examples/task_alif.py: the second half of the neurons adapts
        return dict(tau_mem=float(np.exp(-1.0 / 30.0)),
                    beta=np.where(np.arange(H) < H // 2, 0.0, 0.1).astype(np.float32),
                    rho=float(np.exp(-1.0 / 500.0)), tau_out=tau_out, n_out=2,
                    surrogate=("triangle", 1.0), task=True)
    raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")


def default_batch(variant: str) -> int:
    return TASK_B if variant.startswith("task_") else B


def build_net(H: int, variant: str = "lif", params: dict | None = None, seed: int = 0):
    """The brainstate module of one time step; ``params`` (name -> array, names as
    tracec's ``learner.params``: 'l1/w_in', ...) overrides the lif2.py initialisation."""
    import braintools
    import brainstate
    import braintrace
    import jax
    import jax.numpy as jnp
    import numpy as np

    if variant in IDIOMATIC:
        return build_idiomatic_net(H, params, seed, adaptive=variant == "alif_v")
    c = constants(variant, H)
    adaptive, n_out = c["beta"] is not None, c["n_out"]
    if params is not None:
        params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    # per-neuron constants as jax arrays; numbers stay numbers (weakly typed, as in the models)
    tau_mem, beta = (jnp.asarray(a) if isinstance(a, np.ndarray) else a
                     for a in (c["tau_mem"], c["beta"]))
    name, alpha = c["surrogate"]
    surrogate = {
        "sigmoid": lambda: braintools.surrogate.Sigmoid(alpha=alpha),  # α·σ(αx)·(1-σ(αx))
        # tracec's triangle max(0, 1-|x|/α)/α is ReluGrad's a·max(w-|x|, 0), a = 1/α², w = α
        "triangle": lambda: braintools.surrogate.ReluGrad(alpha=1.0 / alpha ** 2, width=alpha),
    }[name]()
    if c["task"]:
        # braintools' Heaviside is x >= 0, tracec.spike's x > 0: 1 - H(-x) is x > 0, and
        # its surrogate derivative is the same (both surrogates are even functions).
        spike = lambda x: 1.0 - surrogate(-x)  # noqa: E731
    else:
        spike = surrogate

    def zeros(batch, n):
        return jnp.zeros((batch, n), jnp.float32)

    class Layer(brainstate.nn.Module):
        def __init__(self, n, w_in, w_rec, b):
            super().__init__()
            self.n = n
            self.w_in = brainstate.ParamState(w_in)
            self.w_rec = brainstate.ParamState(w_rec)
            self.b = brainstate.ParamState(b)

        def init_state(self, batch_size=None, **kw):
            self.v = brainstate.HiddenState(zeros(batch_size, self.n))
            self.z = brainstate.HiddenState(zeros(batch_size, self.n))
            if adaptive:
                self.a = brainstate.HiddenState(zeros(batch_size, self.n))

        def reset_state(self, batch_size=None, **kw):
            self.v.value = zeros(batch_size, self.n)
            self.z.value = zeros(batch_size, self.n)
            if adaptive:
                self.a.value = zeros(batch_size, self.n)

        def update(self, x):
            v = (tau_mem * self.v.value + braintrace.matmul(x, self.w_in.value)
                 + braintrace.matmul(self.z.value, self.w_rec.value)
                 + braintrace.element_wise(self.b.value))
            th = V_TH + beta * self.a.value if adaptive else V_TH
            z = spike(v - th)
            # the task networks reset through stop_gradient (e-prop): the traces follow the leak
            self.v.value = v - (jax.lax.stop_gradient(z) if c["task"] else z) * th
            self.z.value = z
            if adaptive:
                self.a.value = c["rho"] * self.a.value + z
            return z

    class Readout(brainstate.nn.Module):
        def __init__(self, w):
            super().__init__()
            self.w = brainstate.ParamState(w)

        def init_state(self, batch_size=None, **kw):
            self.y = brainstate.HiddenState(zeros(batch_size, n_out))

        def reset_state(self, batch_size=None, **kw):
            self.y.value = zeros(batch_size, n_out)

        def update(self, z):
            y = c["tau_out"] * self.y.value + braintrace.matmul(z, self.w.value)
            self.y.value = y
            return y

    class Net(brainstate.nn.Module):
        def __init__(self, p):
            super().__init__()
            self.l1 = Layer(H, p["l1/w_in"], p["l1/w_rec"], p["l1/b"])
            self.l2 = Layer(H, p["l2/w_in"], p["l2/w_rec"], p["l2/b"])
            self.out = Readout(p["out/w"])

        def update(self, x):
            return self.out(self.l2(self.l1(x)))

    return Net(init_params(H, n_out, seed) if params is None else params)


def init_params(H: int, n_out: int, seed: int = 0) -> dict:
    """examples/lif2.py's init_params (and task_*.py's), verbatim in its key use, as
    tracec's parameter names ('l1/w_in', ...) -> float32 arrays."""
    import jax
    import jax.numpy as jnp

    k = jax.random.split(jax.random.PRNGKey(seed), 5)

    def dense(key, fan_in, fan_out, gain=1.0):
        return gain * jax.random.normal(key, (fan_in, fan_out), jnp.float32) / jnp.sqrt(fan_in)

    return {"l1/w_in": dense(k[0], N_IN, H, 2.0), "l1/w_rec": dense(k[1], H, H, 0.5),
            "l1/b": jnp.zeros((H,), jnp.float32),
            "l2/w_in": dense(k[2], H, H, 2.0), "l2/w_rec": dense(k[3], H, H, 0.5),
            "l2/b": jnp.zeros((H,), jnp.float32),
            "out/w": dense(k[4], H, n_out)}


# --------------------------------------------------------------------------- idiomatic network

IDIOMATIC = ("lif_v", "alif_v")
# Time constants in steps (dt = 1) whose decays exp(-dt/tau) are lif's 0.9 and 0.8, and
# alif's adaptation decay 0.95.
TAU_MEM_STEPS = -1.0 / math.log(TAU_MEM)
TAU_OUT_STEPS = -1.0 / math.log(TAU_OUT)
TAU_A_STEPS = -1.0 / math.log(RHO)


def build_idiomatic_net(H: int, params: dict | None = None, seed: int = 0, adaptive: bool = False):
    """The lif network written the way braintrace's own examples write a recurrent LIF
    network. Followed: the LIF-with-delta-synapse layer of the speed and memory benchmark
    among braintrace's examples ("003-snn-memory-and-speed-evaluation", its
    ``_LIF_Delta_Dense_Layer`` and ``ETraceNet``) and ``LIF_Delta_Net`` of its
    ``snn_models.py``: per layer a ``brainpy.state.LIF`` (soft reset, unitless) fed by a
    ``brainpy.state.DeltaProj`` whose ``comm`` is one ``braintrace.nn.Linear`` over the
    concatenated ``[x, z]``, the last spike ``z`` recomputed from the membrane
    (``neu.get_spike()``), and a ``braintrace.nn.LeakyRateReadout``. The learner and the
    training iteration follow its pp_prop and D-RTRL examples (``Trainer``).

    The same function as ``lif`` (examples/lif2.py) with the membrane as the only hidden
    state of a layer; per step, V the membrane before the reset::

        z' = H(V - 1);  V = 0.9 (V - z') + [x, z'] W + b;  z = H(V - 1)
        readout: y = 0.8 y + z2 W_out

    (brainpy's exponential Euler step of dV/dt = -V/tau with exp(-1/tau) = 0.9, the
    Linear's output added to V as a delta input; W = [W_in; W_rec]). tracec's copy of it
    is benchmarks/networks.py's ``lif_v``.

    ``adaptive`` (variant ``alif_v``): the neuron is ``brainpy.state.ALIF`` instead, the
    layer otherwise unchanged, as braintrace's examples make their ALIF cell from their
    LIF cell by swapping the neuron (their pp_prop ALIF example's cell feeds it through an
    exponential synapse, one more hidden state; here the delta projection of the speed
    benchmark's layer stays), with alif's constants (threshold adaptation 1.8, adaptation
    decay e^(-1/tau_a) = 0.95); brainpy's ALIF step, V and a its two hidden states::

        z' = H(V - 1 - 1.8 a);  V = 0.9 (V - z') + [x, z'] W + b;  a = 0.95 (a + z');
        z = H(V - 1 - 1.8 a)

    (the soft reset subtracts the fixed threshold; tracec's copy: ``alif_v``)."""
    import brainpy.state
    import braintools
    import brainstate
    import braintrace
    import jax.numpy as jnp

    brainstate.environ.set(dt=1.0)  # unitless, one step; the neurons and the readout read it when built
    p = init_params(H, N_OUT, seed) if params is None else params
    p = {k: jnp.asarray(v, jnp.float32) for k, v in p.items()}
    spk_fun = braintools.surrogate.Sigmoid(alpha=4.0)

    def neuron(n):
        common = dict(R=1.0, tau=TAU_MEM_STEPS, V_th=V_TH, V_reset=0.0, V_rest=0.0,
                      spk_fun=spk_fun, spk_reset="soft", V_initializer=braintools.init.ZeroInit())
        if adaptive:
            return brainpy.state.ALIF(n, tau_a=TAU_A_STEPS, beta=BETA,
                                      a_initializer=braintools.init.ZeroInit(), **common)
        return brainpy.state.LIF(n, **common)

    class Layer(brainstate.nn.Module):
        def __init__(self, n_in, n_rec, w_in, w_rec, b):
            super().__init__()
            self.neu = neuron(n_rec)
            self.syn = brainpy.state.DeltaProj(
                comm=braintrace.nn.Linear(n_in + n_rec, n_rec, w_init=jnp.concatenate([w_in, w_rec]),
                                          b_init=b),
                post=self.neu)

        def update(self, spk):
            self.syn(jnp.concatenate([spk, self.neu.get_spike()], axis=-1))
            self.neu(0.0)
            return self.neu.get_spike()

    class Net(brainstate.nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = Layer(N_IN, H, p["l1/w_in"], p["l1/w_rec"], p["l1/b"])
            self.l2 = Layer(H, H, p["l2/w_in"], p["l2/w_rec"], p["l2/b"])
            self.out = braintrace.nn.LeakyRateReadout(H, N_OUT, tau=TAU_OUT_STEPS, w_init=p["out/w"])

        def update(self, x):
            return self.out(self.l2(self.l1(x)))

    return Net()


def tracec_grads(grads: dict, variant: str) -> dict:
    """A gradient dict keyed by brainstate state paths -> tracec's parameter names
    ('l1/w_in', ...). The idiomatic network's Linear weight [W_in; W_rec] is split into
    its two blocks (the gradient of a concatenation is the concatenation of the
    gradients), its bias is 'l*/b', the readout's weight 'out/w'."""
    import numpy as np

    out = {}
    for path, v in grads.items():
        if variant not in IDIOMATIC:
            out[param_name(path)] = np.asarray(v)
            continue
        layer = str(path[0])
        if layer == "out":
            out["out/w"] = np.asarray(v)
            continue
        # the Linear's ParamState holds {'weight': W, 'bias': b}
        w, b = np.asarray(v["weight"]), np.asarray(v["bias"])
        n_in = N_IN if layer == "l1" else w.shape[1]
        out[f"{layer}/w_in"], out[f"{layer}/w_rec"], out[f"{layer}/b"] = w[:n_in], w[n_in:], b
    return out


def uses_vmap(variant: str, batched: bool = False) -> bool:
    """The idiomatic network's learner is vmapped over the batch, as in braintrace's pp_prop
    examples (``compile(..., vmap=True)``; faster there than batched states, see
    benchmarks/README.md); ``batched`` (``--batched``) asks for batched states instead."""
    return variant in IDIOMATIC and not batched


def form(variant: str, algorithm: str, batched: bool = False) -> str:
    """How the network and its learner are written, for the records."""
    if variant not in IDIOMATIC:
        return "braintrace.matmul / element_wise on {v, z} states; compile outside jit"
    if algorithm == "bptt":
        return "braintrace's example network; brainstate.transform.grad of a for_loop"
    return ("braintrace's example network; compile(vmap=True) inside one jit with etrace_grad and "
            "the optimizer step" if uses_vmap(variant, batched) else
            "braintrace's example network; compile(batch_size=B), etrace_grad and the optimizer "
            "step in one jit")


def xent(output, target):
    import jax
    import jax.numpy as jnp
    logp = jax.nn.log_softmax(output, axis=-1)
    return -jnp.mean(jnp.sum(jax.nn.one_hot(target, output.shape[-1]) * logp, axis=-1))


def param_name(path) -> str:
    """brainstate's state path ('l1', 'w_in') -> tracec's parameter name 'l1/w_in'."""
    return "/".join(str(p) for p in path)


class Trainer:
    """One algorithm on one network: ``grads(xs, ys, mask)`` (summed over steps, as
    tracec accumulates) and ``iteration(xs, ys, mask)`` (reset, grads, optimizer step)."""

    def __init__(self, net, algorithm: str, batch: int, x0, decay: float = 0.9,
                 optimizer: str = "sgd", lr: float = 1e-3, vmap: bool = False):
        import braintools
        import brainstate
        import braintrace
        import jax.numpy as jnp

        self.algorithm, self.batch = algorithm, batch
        t0 = time.perf_counter()
        opts = {"decay_or_rank": float(decay)} if algorithm == "es_d_rtrl" else {}
        if algorithm == "bptt":
            brainstate.nn.init_all_states(net, batch_size=batch)
            self.root = net
            self.weights = net.states(brainstate.ParamState)
        elif vmap:
            # braintrace's pp_prop examples (their online_train_epoch): compile(..., vmap=True)
            # inside the jitted iteration, which also (re)initialises the per-sample states
            self.root = None
            self.weights = net.states(brainstate.ParamState)
        else:
            # the learner class, as braintrace's examples pass it (braintrace.pp_prop, ...)
            rule = {"es_d_rtrl": braintrace.pp_prop, "d_rtrl": braintrace.D_RTRL}[algorithm]
            self.root = braintrace.compile(net, rule, x0, batch_size=batch, **opts)
            self.weights = self.root.param_states
        self.build_s = time.perf_counter() - t0
        self.net = net
        opt_cls = {"sgd": braintools.optim.SGD, "adam": braintools.optim.Adam}[optimizer]
        self.opt = opt_cls(lr)
        self.opt.register_trainable_weights(self.weights)

        def seq_grads(xs, ys, mask):
            if vmap and algorithm != "bptt":
                rule = {"es_d_rtrl": braintrace.pp_prop, "d_rtrl": braintrace.D_RTRL}[algorithm]
                learner = braintrace.compile(net, rule, xs[0], batch_size=batch, vmap=True, **opts)
                return learner.etrace_grad(xs, ys, mask=mask, reduction="sum", return_value=True,
                                           step_fn=lambda x, y: xent(learner(x), y))
            brainstate.nn.reset_all_states(self.root, batch_size=batch)
            if algorithm == "bptt":
                def total(xs, ys, mask):
                    losses = brainstate.transform.for_loop(lambda x, y: xent(net(x), y), xs, ys)
                    return jnp.sum(losses * mask), losses
                g, losses = brainstate.transform.grad(total, self.weights, has_aux=True)(xs, ys, mask)
            else:
                g, losses = self.root.etrace_grad(
                    xs, ys, mask=mask, reduction="sum", return_value=True,
                    step_fn=lambda x, y: xent(self.root(x), y))
            return g, losses

        def iteration(xs, ys, mask):
            g, losses = seq_grads(xs, ys, mask)
            self.opt.update(g)
            return losses

        self.grads = brainstate.transform.jit(seq_grads)
        self.iteration = brainstate.transform.jit(iteration)


def make_data(T: int, batch: int, seed: int = 0, n_out: int = N_OUT):
    return common.make_data(T, batch, N_IN, n_out, seed)


peak_rss_mib = common.peak_rss_mib


def versions() -> dict:
    from importlib.metadata import version
    out = {"python": sys.version.split()[0]}
    for pkg in ("braintrace", "brainstate", "braintools", "brainunit", "brainpy", "brainpy.state",
                "jax", "jaxlib", "numpy"):
        try:
            out[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 - report what is there
            out[pkg] = None
    return out


# --------------------------------------------------------------------------- time

def measure(variant: str, H: int, T: int, algorithm: str, batch: int, repeats: int,
            decay: float, optimizer: str, lr: float, batched: bool = False) -> dict:
    """One measurement in this process; see the module docstring for the fields."""
    import jax
    import jax.numpy as jnp

    xs_np, ys_np = make_data(T, batch, n_out=constants(variant, H)["n_out"])
    xs, ys, mask = jnp.asarray(xs_np), jnp.asarray(ys_np), jnp.ones((T,), jnp.float32)
    trainer = Trainer(build_net(H, variant), algorithm, batch, xs[0], decay, optimizer, lr,
                      vmap=uses_vmap(variant, batched))
    t0 = time.perf_counter()
    jax.block_until_ready(trainer.iteration(xs, ys, mask))
    first = time.perf_counter() - t0
    # brainstate BPTT's jitted iteration compiles again on its second call (both releases):
    # one more call, untimed, so that no repeat holds a compilation
    jax.block_until_ready(trainer.iteration(xs, ys, mask))
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        losses = jax.block_until_ready(trainer.iteration(xs, ys, mask))
        runs.append(time.perf_counter() - t0)
    med = statistics.median(runs)
    return {"tool": "brainstate" if algorithm == "bptt" else "braintrace", "algorithm": algorithm,
            "braintrace_algorithm": BRAINTRACE_NAME.get(algorithm, "bptt"), "variant": variant,
            "H": H, "T": T, "batch": batch, "repeats": repeats, "optimizer": optimizer,
            "decay": decay if algorithm == "es_d_rtrl" else None,
            "form": form(variant, algorithm, batched),
            "us_per_step_median": med / T * 1e6, "us_per_step_min": min(runs) / T * 1e6,
            "us_per_step_max": max(runs) / T * 1e6, "iteration_s": runs,
            "build_s": trainer.build_s, "first_call_s": first,
            "compile_s": trainer.build_s + max(first - med, 0.0),
            "final_loss_mean": float(jnp.mean(losses)),
            "peak_rss_mib": peak_rss_mib(),
            "cpu_count": os.cpu_count(), "versions": versions()}


def cmd_time(args) -> int:
    out = open(args.out, "a") if args.out else None
    failed = 0
    for variant in args.variant:
        for H in args.H:
            for T in args.T:
                for alg in args.algorithm:
                    spec = dict(variant=variant, H=H, T=T, algorithm=alg,
                                batch=args.batch or default_batch(variant),
                                repeats=args.repeats, decay=args.decay, optimizer=args.optimizer,
                                lr=args.lr, batched=args.batched)
                    log(f"braintrace_side: {variant} H={H} T={T} {alg} ...")
                    if args.in_process:
                        rec = measure(**spec)
                    else:
                        rec = _in_subprocess(spec, args.timeout)
                    if rec is None:
                        failed += 1
                        continue
                    line = json.dumps(rec)
                    print(line, flush=True)
                    if out:
                        out.write(line + "\n")
                        out.flush()
    return 1 if failed else 0


def _in_subprocess(spec: dict, timeout: float) -> dict | None:
    cmd = [sys.executable, os.path.abspath(__file__), "_one", json.dumps(spec)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"braintrace_side: timed out after {timeout:.0f} s: {spec}")
        return None
    if p.returncode != 0:
        log(p.stderr[-4000:])
        log(f"braintrace_side: failed (exit {p.returncode}): {spec}")
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


def cmd_one(args) -> int:
    print(json.dumps(measure(**json.loads(args.spec))), flush=True)
    return 0


# --------------------------------------------------------------------------- grads (parity)

def cmd_grads(args) -> int:
    """Read params (``param:NAME``), ``xs``, ``ys``, optional ``mask``, ``H``, ``variant``,
    ``decay`` from IN.npz; write ``ALG:NAME`` gradients (summed over steps) and
    ``ALG:losses`` to OUT.npz for every algorithm, and ``forward``: the network's outputs
    over ``xs`` from the initial state [T, B, n_out] (no training)."""
    import brainstate
    import jax.numpy as jnp
    import numpy as np

    d = np.load(args.inp)
    params = {k[len("param:"):]: d[k] for k in d.files if k.startswith("param:")}
    H = int(d["H"]) if "H" in d.files else params["l1/w_rec"].shape[0]
    variant = str(d["variant"]) if "variant" in d.files else "lif"
    decay = float(d["decay"]) if "decay" in d.files else 0.9
    xs, ys = jnp.asarray(d["xs"]), jnp.asarray(d["ys"])
    mask = jnp.asarray(d["mask"]) if "mask" in d.files else jnp.ones((xs.shape[0],), jnp.float32)
    out = {}
    for alg in args.algorithm:
        tr = Trainer(build_net(H, variant, params), alg, xs.shape[1], xs[0], decay,
                     vmap=uses_vmap(variant, args.batched))
        g, losses = tr.grads(xs, ys, mask)
        for name, v in tracec_grads(g, variant).items():
            out[f"{alg}:{name}"] = v
        out[f"{alg}:losses"] = np.asarray(losses)
    net = build_net(H, variant, params)
    brainstate.nn.init_all_states(net, batch_size=xs.shape[1])
    out["forward"] = np.asarray(brainstate.transform.for_loop(net, xs))
    np.savez(args.out, **out)
    log(f"braintrace_side: wrote {len(out)} arrays to {args.out}")
    return 0


# --------------------------------------------------------------------------- accuracy

def load_params(path: str | None) -> dict | None:
    """An .npz of tracec's parameters (keys 'l1/w_in', ...) as name -> array, or None."""
    import numpy as np

    if path is None:
        return None
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


def cmd_accuracy(args) -> int:
    params = load_params(args.params)
    for variant in args.variant:
        for H in args.H:
            for alg in args.algorithm:
                rec = train_task(variant, H, alg, args.batch or default_batch(variant), args.task,
                                 args.iterations, args.lr, args.decay, params, args.params)
                print(json.dumps(rec), flush=True)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps(rec) + "\n")
    return 0


def train_task(variant: str, H: int, algorithm: str, batch: int, task: str, iterations: int,
               lr: float, decay: float, params: dict | None = None,
               params_file: str | None = None) -> dict:
    """examples/train_online.py with braintrace: per iteration a fresh task batch,
    reset, one etrace_grad over the sequence (loss masked to the decision steps), one
    Adam step; test accuracy on a fresh batch, forward only, read at the decision steps.
    ``params`` (name -> array) are the initial weights (default: build_net's, seed 0)."""
    import brainstate
    import jax.numpy as jnp
    import numpy as np

    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))
    import tasks  # numpy only

    make = getattr(tasks, task)
    T = make(1, seed=0)[0].shape[0]
    tr = Trainer(build_net(H, variant, params), algorithm, batch,
                 jnp.zeros((batch, N_IN), jnp.float32), decay, "adam", lr,
                 vmap=uses_vmap(variant, False))

    @brainstate.transform.jit
    def forward(xs):
        brainstate.nn.reset_all_states(tr.root or tr.net, batch_size=batch)
        return brainstate.transform.for_loop(tr.net, xs)

    accs, losses, times = [], [], []
    for it in range(iterations):
        t0 = time.perf_counter()
        xs, labels, mask = make(batch, seed=1000 + it)  # the seeds of examples/train_online.py
        targets = np.broadcast_to(labels, (T, batch)).astype(np.int32)
        step_losses = np.asarray(tr.iteration(jnp.asarray(xs), jnp.asarray(targets), jnp.asarray(mask)))
        xs_t, labels_t, mask_t = make(batch, seed=10_000 + it)
        outs = np.asarray(forward(jnp.asarray(xs_t)))
        accs.append(float(np.mean(np.argmax((outs * mask_t[:, None, None]).sum(0), -1) == labels_t)))
        losses.append(float((step_losses * mask).sum() / mask.sum()))
        times.append(time.perf_counter() - t0)  # training and test; the first includes jit
        log(f"{variant} H={H} {algorithm}: iteration {it + 1}/{iterations} loss {losses[-1]:.4f} "
            f"test accuracy {accs[-1]:.3f}")
    return {"tool": "brainstate" if algorithm == "bptt" else "braintrace", "algorithm": algorithm,
            "variant": variant, "H": H, "batch": batch, "task": task, "T": T,
            "iterations": iterations, "optimizer": "adam", "lr": lr,
            "decay": decay if algorithm == "es_d_rtrl" else None, "params": params_file,
            "final_accuracy": accs[-1],
            "accuracy_last10_mean": float(np.mean(accs[-10:])), "accuracy": accs, "loss": losses,
            "iteration_s": times, "wall_s": sum(times), "versions": versions()}


# --------------------------------------------------------------------------- CLI

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, T=True):
        p.add_argument("--variant", nargs="+", default=["lif"], choices=VARIANTS)
        p.add_argument("--H", type=int, nargs="+", default=[64])
        p.add_argument("--algorithm", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
        p.add_argument("--batch", type=int,
                       help=f"default: the variant's ({B}; {TASK_B} for task_lif, task_alif)")
        p.add_argument("--decay", type=float, default=0.9, help="ES-D-RTRL trace decay α")
        p.add_argument("--out", help="append the JSON lines to this file too")
        p.add_argument("--batched", action="store_true",
                       help="lif_v, alif_v: batched states (compile(batch_size=B)) instead of the vmapped "
                            "learner of braintrace's pp_prop examples")
        if T:
            p.add_argument("--T", type=int, nargs="+", default=[100])

    p = sub.add_parser("time", help="time per training iteration / step, compile time, peak RSS")
    common(p)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--in-process", action="store_true",
                   help="no fresh subprocess per measurement (faster; peak_rss_mib is then cumulative)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per measurement")
    p.set_defaults(fn=cmd_time)

    p = sub.add_parser("_one")  # internal: one measurement, for the subprocess
    p.add_argument("spec")
    p.set_defaults(fn=cmd_one)

    p = sub.add_parser("grads", help="gradients of every algorithm for given params and data")
    p.add_argument("inp")
    p.add_argument("out")
    p.add_argument("--batched", action="store_true", help="lif_v, alif_v: batched states, not vmap")
    p.add_argument("--algorithm", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    p.set_defaults(fn=cmd_grads)

    p = sub.add_parser("accuracy", help="train online on a task of examples/tasks.py")
    common(p, T=False)
    p.add_argument("--task", default="delayed_match", choices=["delayed_match", "evidence_accumulation"])
    p.add_argument("--iterations", type=int, default=60)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--params", metavar="PATH.npz",
                   help="initial weights, keys as tracec's parameter names ('l1/w_in', ...): "
                        "tracec.runtime.load(path).params saved with numpy.savez")
    p.set_defaults(fn=cmd_accuracy)

    p = sub.add_parser("info", help="versions of the benchmark venv's packages, as JSON")
    p.set_defaults(fn=lambda a: print(json.dumps(versions())) or 0)

    args = ap.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
