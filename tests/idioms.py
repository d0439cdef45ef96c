"""One-layer models written the ways JAX users commonly write them: element-wise
recurrence and a readout without state, so D-RTRL must equal BPTT exactly. Each entry
builds a tracec.Model; tests/test_idioms.py compiles it and checks it against jax.grad."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import tracec

B, N_IN, H, N_OUT = 4, 6, 8, 3
VOCAB = 5
MASK = (np.random.default_rng(7).random((N_IN, H)) < 0.5).astype(np.float32)


def _params(key):
    k1, k2 = jax.random.split(key)
    return {"w_in": 2.0 * jax.random.normal(k1, (N_IN, H)) / jnp.sqrt(N_IN),
            "b": 0.1 * jnp.ones((H,)),
            "w_out": jax.random.normal(k2, (H, N_OUT)) / jnp.sqrt(H)}


def xent_one_hot(out, target):
    logp = jax.nn.log_softmax(out, axis=-1)
    return -jnp.mean(jnp.sum(jax.nn.one_hot(target, out.shape[-1]) * logp, axis=-1))


def lif(v_prev, current, tau=0.9):
    z_prev = tracec.spike(v_prev - 1.0, "fast-sigmoid", 5.0)
    v = tau * v_prev + current - z_prev
    return v, tracec.spike(v - 1.0, "fast-sigmoid", 5.0)


def _model(step, init_params=_params, loss=xent_one_hot, input_spec=None, target_spec=None,
           init_state=None):
    return tracec.Model(
        init_params=init_params,
        init_state=init_state or (lambda b: {"v": jnp.zeros((b, H))}),
        step=step, loss=loss,
        input=input_spec or jax.ShapeDtypeStruct((B, N_IN), jnp.float32),
        target=target_spec or jax.ShapeDtypeStruct((B,), jnp.int32))


def _readout(p, v, z):
    return z @ p["w_out"] + 0.1 * v @ p["w_out"]


def dale():
    """Dale's law: the weight's sign fixed by taking its absolute value before use."""
    def step(p, s, x):
        v, z = lif(s["v"], x @ jnp.abs(p["w_in"]) + p["b"])
        return {"v": v}, _readout(p, v, z)
    return _model(step)


def masked():
    """Fixed sparse connectivity: the weight times a constant 0/1 mask."""
    def step(p, s, x):
        v, z = lif(s["v"], x @ (p["w_in"] * MASK) + p["b"])
        return {"v": v}, _readout(p, v, z)
    return _model(step)


def softplus_weight():
    """A positive weight through softplus, and a learned time constant through a sigmoid."""
    def init(key):
        p = _params(key)
        p["tau"] = 2.0 * jnp.ones((H,))
        return p

    def step(p, s, x):
        v, z = lif(s["v"], x @ jax.nn.softplus(p["w_in"]) + p["b"], tau=jax.nn.sigmoid(p["tau"]))
        return {"v": v}, _readout(p, v, z)
    return _model(step, init_params=init)


def _params_neuron_major(key):
    """The input weight stored [H, I] (as torch.nn.Linear keeps it)."""
    p = _params(key)
    p["w_in"] = p["w_in"].T
    return p


def transposed():
    """The weight stored [H, I] and used transposed (x @ W.T)."""
    def step(p, s, x):
        v, z = lif(s["v"], x @ p["w_in"].T + p["b"])
        return {"v": v}, _readout(p, v, z)
    return _model(step, init_params=_params_neuron_major)


def einsum_hi():
    """An einsum contracting the weight's second axis: 'bi,hi->bh'."""
    def step(p, s, x):
        v, z = lif(s["v"], jnp.einsum("bi,hi->bh", x, p["w_in"]) + p["b"])
        return {"v": v}, _readout(p, v, z)
    return _model(step, init_params=_params_neuron_major)


def two_params_one_weight():
    """A weight written as a product of two parameters (magnitude times sign-free gain)."""
    def init(key):
        p = _params(key)
        p["gain"] = jnp.full((N_IN, H), 0.8)
        return p

    def step(p, s, x):
        v, z = lif(s["v"], x @ (p["gain"] * jnp.exp(0.1 * p["w_in"])) + p["b"])
        return {"v": v}, _readout(p, v, z)
    return _model(step, init_params=init)


def fori_substeps():
    """Three sub-steps of the membrane per time step, written with lax.fori_loop."""
    def step(p, s, x):
        current = x @ p["w_in"] + p["b"]

        def sub(i, v):
            return 0.8 * v + 0.4 * current - 0.1 * tracec.spike(v - 1.0, "triangle", 1.0)
        v = jax.lax.fori_loop(0, 3, sub, s["v"])
        z = tracec.spike(v - 1.0, "triangle", 1.0)
        return {"v": v}, _readout(p, v, z)
    return _model(step)


def scan_substeps():
    """Two sub-steps written with lax.scan over a fixed number of iterations, each
    reading its own slice of a per-step drive."""
    def step(p, s, x):
        current = x @ p["w_in"]
        drive = jnp.stack([current, 0.5 * current + p["b"]])

        def sub(v, d):
            v = 0.9 * v + d
            return v, jnp.tanh(v)
        v, hs = jax.lax.scan(sub, s["v"], drive)
        z = tracec.spike(v - 1.0, "arctan", 2.0)
        return {"v": v}, _readout(p, hs[-1], z)
    return _model(step)


def branch():
    """A data-dependent branch (lax.cond): the membrane leaks faster on strong input."""
    def step(p, s, x):
        current = x @ p["w_in"] + p["b"]
        v = jax.lax.cond(jnp.sum(x) > 12.0, lambda v: 0.5 * v + current,
                         lambda v: 0.9 * v + current, s["v"])
        v, z = lif(v, 0.0)
        return {"v": v}, _readout(p, v, z)
    return _model(step)


def two_streams():
    """Input given as a dict of two streams (a spike train and a gain per sample), and a
    target dict of class and regression value (two losses summed)."""
    def init(key):
        p = _params(key)
        p["w_gain"] = jnp.full((H,), 0.5)
        return p

    def step(p, s, x):
        v, z = lif(s["v"], x["spikes"] @ p["w_in"] + x["gain"][:, None] * p["w_gain"] + p["b"])
        return {"v": v}, _readout(p, v, z)

    def loss(out, target):
        return (xent_one_hot(out, target["label"])
                + 0.5 * jnp.mean((out[:, 0] - target["value"]) ** 2))
    return _model(step, init_params=init, loss=loss,
                  input_spec={"spikes": jax.ShapeDtypeStruct((B, N_IN), jnp.float32),
                              "gain": jax.ShapeDtypeStruct((B,), jnp.float32)},
                  target_spec={"label": jax.ShapeDtypeStruct((B,), jnp.int32),
                               "value": jax.ShapeDtypeStruct((B,), jnp.float32)})


def embedding():
    """Integer tokens looked up in a learned embedding (E[tokens]) drive the neurons,
    with a second stream of spikes; the loss is cross-entropy with take_along_axis."""
    def init(key):
        p = _params(key)
        p["emb"] = 0.5 * jax.random.normal(jax.random.PRNGKey(5), (VOCAB, H))
        return p

    def step(p, s, x):
        v, z = lif(s["v"], p["emb"][x["tokens"]] + x["spikes"] @ p["w_in"] + p["b"])
        return {"v": v}, _readout(p, v, z)

    def loss(out, target):
        logp = jax.nn.log_softmax(out, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, target[:, None], axis=-1))
    return _model(step, init_params=init, loss=loss,
                  input_spec={"tokens": jax.ShapeDtypeStruct((B,), jnp.int32),
                              "spikes": jax.ShapeDtypeStruct((B, N_IN), jnp.float32)})


def take_embedding():
    """jnp.take of rows of a transformed embedding (its absolute value) by token."""
    def init(key):
        p = _params(key)
        p["emb"] = 0.5 * jax.random.normal(jax.random.PRNGKey(6), (VOCAB, H))
        return p

    def step(p, s, tokens):
        v, z = lif(s["v"], jnp.take(jnp.abs(p["emb"]), tokens, axis=0) + p["b"])
        return {"v": v}, _readout(p, v, z)

    def loss(out, target):
        logp = jax.nn.log_softmax(out, axis=-1)
        return -jnp.mean(logp[jnp.arange(B), target])
    return _model(step, init_params=init, loss=loss,
                  input_spec=jax.ShapeDtypeStruct((B,), jnp.int32))


def conv_reset_before_read():
    """A convolutional LIF layer (2 -> 3 channels on a 5x5 grid) written as Norse writes
    it: the readout reads the spike computed before the hard reset."""
    C_IN, C, S = 2, 3, 5

    def init(key):
        k1, k2 = jax.random.split(key)
        return {"w_in": 2.0 * jax.random.normal(k1, (C, C_IN, 3, 3)) / jnp.sqrt(C_IN * 9.0),
                "w_out": jax.random.normal(k2, (C * S * S, N_OUT)) / jnp.sqrt(C * S * S)}

    def step(p, s, x):
        y = jax.lax.conv_general_dilated(x, p["w_in"], (1, 1), "SAME",
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
        v = 0.9 * s["v"] + y
        z = tracec.spike(v - 1.0, "fast-sigmoid", 5.0)
        v_new = jnp.where(z > 0, 0.0, v)
        return {"v": v_new}, z.reshape(z.shape[0], -1) @ p["w_out"]
    return _model(step, init_params=init,
                  init_state=lambda b: {"v": jnp.zeros((b, C, S, S))},
                  input_spec=jax.ShapeDtypeStruct((B, C_IN, S, S), jnp.float32))


def fused_gates_read_before_update():
    """An LSTM cell's fused gate matmul [B, 4H] split into four gates, without recurrent
    weights; the readout also reads the forget term f * c_{t-1}, a value computed from
    the old state before the update."""
    def init(key):
        k1, k2 = jax.random.split(key)
        return {"w": jax.random.normal(k1, (N_IN, 4 * H)) / jnp.sqrt(N_IN),
                "b": 0.1 * jnp.ones((4 * H,)),
                "w_out": jax.random.normal(k2, (H, N_OUT)) / jnp.sqrt(H)}

    def step(p, s, x):
        i, f, g, o = jnp.split(x @ p["w"] + p["b"], 4, axis=-1)
        kept = jax.nn.sigmoid(f) * s["c"]
        c = kept + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return {"c": c, "h": h}, (h + jnp.tanh(kept)) @ p["w_out"]
    return _model(step, init_params=init,
                  init_state=lambda b: {"c": jnp.zeros((b, H)), "h": jnp.zeros((b, H))})


def vmapped_per_sample():
    """The step written for one sample and vmapped over the batch."""
    def one(p, v, x):
        v_new, z = lif(v, x @ p["w_in"] + p["b"])
        return v_new, z @ p["w_out"] + 0.1 * v_new @ p["w_out"]

    def step(p, s, x):
        v, out = jax.vmap(one, in_axes=(None, 0, 0))(p, s["v"], x)
        return {"v": v}, out
    return _model(step)


def min_gru():
    """A minGRU-style cell: an update gate and a candidate, both from the input, mix the
    old state element-wise: h = (1 - z) h + z h~."""
    def init(key):
        p = _params(key)
        p["w_z"] = jax.random.normal(jax.random.PRNGKey(8), (N_IN, H)) / jnp.sqrt(N_IN)
        return p

    def step(p, s, x):
        z = jax.nn.sigmoid(x @ p["w_z"])
        h_tilde = jnp.tanh(x @ p["w_in"] + p["b"])
        h = (1.0 - z) * s["v"] + z * h_tilde
        return {"v": h}, h @ p["w_out"]
    return _model(step, init_params=init)


def detached_reset():
    """The reset detached from the gradient with jax.lax.stop_gradient (snnTorch's and
    Norse's "detach the reset"): jax.grad does not differentiate through it, nor may tracec."""
    def step(p, s, x):
        z_prev = tracec.spike(s["v"] - 1.0, "fast-sigmoid", 5.0)
        v = 0.9 * s["v"] + x @ p["w_in"] + p["b"] - jax.lax.stop_gradient(z_prev)
        return {"v": v}, _readout(p, v, tracec.spike(v - 1.0, "fast-sigmoid", 5.0))
    return _model(step)


def _lif_step(p, s, x):
    """One LIF layer and its readout: the step of the models that vary the loss."""
    v, z = lif(s["v"], x @ p["w_in"] + p["b"])
    return {"v": v}, _readout(p, v, z)


def detached_loss_weight():
    """A loss with a detached part: each sample's cross-entropy weighed by how wrong the
    model is, the weight under jax.lax.stop_gradient (as focal-style losses write it);
    jax.grad does not differentiate through the weight, nor may tracec."""
    def loss(out, target):
        nll = -jnp.sum(jax.nn.one_hot(target, out.shape[-1]) * jax.nn.log_softmax(out), axis=-1)
        return jnp.mean(jax.lax.stop_gradient(1.0 - jnp.exp(-nll)) * nll)

    return _model(_lif_step, loss=loss)


@jax.custom_jvp
def _straight_through_clip(x):
    return jnp.clip(x, -0.5, 0.5)


@_straight_through_clip.defjvp
def _straight_through_clip_jvp(primals, tangents):
    return _straight_through_clip(primals[0]), tangents[0]


def own_rule_in_loss():
    """The loss clips the readout with a straight-through estimator written with
    jax.custom_jvp: jax.grad uses the rule (derivative 1), not the clip's derivative."""
    def loss(out, target):
        return xent_one_hot(_straight_through_clip(out), target)

    return _model(_lif_step, loss=loss)


def own_rule_in_step():
    """The input current clipped with the straight-through estimator of
    own_rule_in_loss (jax.custom_jvp) before it reaches the membrane: jax.grad
    differentiates the clip by the rule (derivative 1)."""
    def step(p, s, x):
        v, z = lif(s["v"], _straight_through_clip(x @ p["w_in"]) + p["b"])
        return {"v": v}, _readout(p, v, z)
    return _model(step)


@jax.custom_jvp
def _superspike(x):
    return (x > 0).astype(x.dtype)


@_superspike.defjvp
def _superspike_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _superspike(x), t / (1.0 + 10.0 * jnp.abs(x)) ** 2


@jax.custom_jvp
def _boxcar_spike(x):
    return jnp.where(x >= 0, 1.0, 0.0)


@_boxcar_spike.defjvp
def _boxcar_spike_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _boxcar_spike(x), t * 0.5 * (jnp.abs(x) < 1.0).astype(jnp.float32)


def custom_jvp_surrogate():
    """The surrogate written with the model's own jax.custom_jvp (SuperSpike's fast
    sigmoid, and a boxcar through jnp.where): the gradient uses the user's derivative."""
    def step(p, s, x):
        z_prev = _superspike(s["v"] - 1.0)
        v = 0.9 * s["v"] + x @ p["w_in"] + p["b"] - z_prev
        return {"v": v}, _readout(p, v, _boxcar_spike(v - 1.0))
    return _model(step)


@jax.custom_vjp
def _vjp_spike(x):
    return (x > 0).astype(x.dtype)


def _vjp_spike_fwd(x):
    return _vjp_spike(x), x


def _vjp_spike_bwd(x, g):
    return (g * 2.0 * jax.nn.sigmoid(2.0 * x) * (1.0 - jax.nn.sigmoid(2.0 * x)),)


_vjp_spike.defvjp(_vjp_spike_fwd, _vjp_spike_bwd)


@jax.custom_gradient
def _gradient_spike(x):
    return (x > 0).astype(x.dtype), lambda g: g * jnp.exp(-x * x)


def custom_vjp_surrogate():
    """The surrogate written with jax.custom_vjp (a sigmoid's derivative) and with
    jax.custom_gradient (a Gaussian), in a step written for one sample and vmapped: the
    gradient uses the user's backward functions."""
    def one(p, v, x):
        v = 0.9 * v + x @ p["w_in"] + p["b"] - _vjp_spike(v - 1.0)
        return v, _readout(p, v, _gradient_spike(v - 1.0))

    def step(p, s, x):
        v, out = jax.vmap(one, in_axes=(None, 0, 0))(p, s["v"], x)
        return {"v": v}, out
    return _model(step)


IDIOMS = {f.__name__: f for f in (custom_jvp_surrogate, custom_vjp_surrogate, vmapped_per_sample,
                                  min_gru, detached_reset, detached_loss_weight, own_rule_in_loss,
                                  own_rule_in_step, dale,
                                  masked, softplus_weight,
                                  transposed, einsum_hi, two_params_one_weight, fori_substeps, scan_substeps, branch,
                                  two_streams, embedding, take_embedding, conv_reset_before_read,
                                  fused_gates_read_before_update)}
