"""Two recurrent ALIF layers whose spike is recomputed from the membrane and the adaptation."""
import jax
import jax.numpy as jnp
import tracec

B, N_IN, H, N_OUT = 4, 6, 16, 3


def init_params(key):
    k = jax.random.split(key, 5)
    d = lambda kk, i, o: jax.random.normal(kk, (i, o), jnp.float32) / jnp.sqrt(i)  # noqa: E731
    return {"l1": {"w_in": d(k[0], N_IN, H), "w_rec": d(k[1], H, H), "b": jnp.zeros(H)},
            "l2": {"w_in": d(k[2], H, H), "w_rec": d(k[3], H, H), "b": jnp.zeros(H)},
            "out": {"w": d(k[4], H, N_OUT)}}


def init_state(b):
    z = lambda n: jnp.zeros((b, n), jnp.float32)  # noqa: E731
    return {"l1": {"v": z(H), "a": z(H)}, "l2": {"v": z(H), "a": z(H)}, "out": {"y": z(N_OUT)}}


def _spike(s):
    return tracec.spike(s["v"] - 1.0 - 1.8 * s["a"], surrogate="sigmoid", alpha=4.0)


def _layer(p, s, x):
    z_last = _spike(s)
    v = 0.9 * (s["v"] - z_last) + x @ p["w_in"] + z_last @ p["w_rec"] + p["b"]
    a = 0.95 * (s["a"] + z_last)
    new = {"v": v, "a": a}
    return new, _spike(new)


def step(params, state, x):
    s1, z1 = _layer(params["l1"], state["l1"], x)
    s2, z2 = _layer(params["l2"], state["l2"], z1)
    y = 0.9 * state["out"]["y"] + z2 @ params["out"]["w"]
    return {"l1": s1, "l2": s2, "out": {"y": y}}, y


def loss(y, target):
    logp = jax.nn.log_softmax(y)
    return -jnp.mean(jnp.take_along_axis(logp, target[:, None], axis=-1))


model = tracec.Model(init_params=init_params, init_state=init_state, step=step, loss=loss,
                     input=jax.ShapeDtypeStruct((B, N_IN), jnp.float32),
                     target=jax.ShapeDtypeStruct((B,), jnp.int32))
