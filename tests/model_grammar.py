"""A grammar of one-layer recurrent models, for the BPTT-oracle property test.

Every model drawn here is a single *neuron-intrinsic* layer: its state variables are
coupled only element-wise (1 to 3 states per neuron), its parameters reach the neurons
through one input relation (no recurrent weights) and element-wise parameters, and its
readout has no state. For such a model D-RTRL is exact (docs/design.md): tracec's
parameter change after T steps must equal jax.grad of the summed loss through time.

A model is described by a plain dict (drawn with hypothesis in tests/test_oracle.py)
and turned into Python source text, which is what a user would have written: the
source is executed to build the ``tracec.Model``. Nothing here knows how tracec
implements the rules.
"""

from __future__ import annotations

import textwrap

B, N_IN, H, N_OUT = 3, 4, 5, 3

SURROGATES = ["sigmoid", "fast-sigmoid", "triangle", "arctan", "gaussian"]
RELATIONS = ["dense", "einsum", "transposed", "abs", "softplus", "masked", "embedding"]
VOCAB = 6
NONLINEAR = ["none", "tanh", "sigmoid", "max", "where", "exp"]
RESETS = ["none", "soft", "hard", "multiplicative", "soft-stop-gradient", "soft-detached"]
READS = ["new", "pre-reset", "spike", "old", "mixed"]
SPIKE_SPELLINGS = ["tracec", "custom-jvp", "custom-jvp-where", "custom-jvp-heaviside", "custom-vjp"]
USER_SURROGATES = ["superspike", "sigmoid", "boxcar"]
LOSSES = ["xent-one-hot", "xent-take-along-axis", "xent-arange", "mse"]


def source(spec: dict) -> str:
    """The model file for ``spec`` (keys: see ``tests/test_oracle.py``'s strategy)."""
    S = spec["n_states"]
    names = [f"s{a}" for a in range(S)]
    lines = []
    p = lines.append
    # ---- parameters
    p("def init_params(key):")
    p("    k = jax.random.split(key, 4)")
    w_shape = {"einsum": "(H, N_IN)", "transposed": "(H, N_IN)",
               "embedding": "(VOCAB, H)"}.get(spec["relation"], "(N_IN, H)")
    p(f"    w = 1.5 * jax.random.normal(k[0], {w_shape}) / jnp.sqrt(N_IN)")
    if spec["relation"] == "softplus":
        p("    w = w - 1.0")
    p("    params = {'w_in': w, 'w_out': jax.random.normal(k[1], (H, N_OUT)) / jnp.sqrt(H)}")
    if spec["bias"]:
        p("    params['b'] = 0.1 * jax.random.normal(k[2], (H,))")
    if spec["learned_decay"]:
        p("    params['tau'] = 1.5 + 0.3 * jax.random.normal(k[3], (H,))")
    if spec["learned_threshold"]:
        p("    params['th'] = jnp.full((H,), 0.8)")
    p("    return params")
    p("")
    # ---- the spike's surrogate written by the user with jax.custom_jvp or jax.custom_vjp
    spelling = spec.get("spike_spelling", "tracec")
    if spelling != "tracec":
        a = spec["alpha"]
        heaviside = {"custom-jvp": "(x > 0).astype(x.dtype)",
                     "custom-jvp-where": "jnp.where(x >= 0, 1.0, 0.0)",
                     "custom-jvp-heaviside": "jnp.heaviside(x, 1.0)",
                     "custom-vjp": "(x > 0).astype(x.dtype)"}[spelling]
        derivative = {"superspike": f"1.0 / (1.0 + {a} * jnp.abs(x)) ** 2",
                      "sigmoid": f"{a} * jax.nn.sigmoid({a} * x) * (1.0 - jax.nn.sigmoid({a} * x))",
                      "boxcar": f"0.5 * (jnp.abs(x) < {a}).astype(x.dtype)"}[spec["user_surrogate"]]
        if spelling == "custom-vjp":
            p("@jax.custom_vjp")
            p("def user_spike(x):")
            p(f"    return {heaviside}")
            p("")
            p("def user_spike_bwd(x, g):")
            p(f"    return (g * ({derivative}),)")
            p("")
            p("user_spike.defvjp(lambda x: (user_spike(x), x), user_spike_bwd)")
        else:
            p("@jax.custom_jvp")
            p("def user_spike(x):")
            p(f"    return {heaviside}")
            p("")
            p("@user_spike.defjvp")
            p("def user_spike_jvp(primals, tangents):")
            p("    (x,), (t,) = primals, tangents")
            p(f"    return user_spike(x), t * ({derivative})")
        p("")
    # ---- one step
    p("def step(p, s, x):")
    if spec.get("streams") and spec["relation"] != "embedding":
        p("    x = jnp.concatenate([x['a'], 2.0 * x['b']], axis=-1)")
    rel = {
        "dense": "x @ p['w_in']",
        "einsum": "jnp.einsum('bi,hi->bh', x, p['w_in'])",
        "transposed": "x @ p['w_in'].T",
        "abs": "x @ jnp.abs(p['w_in'])",
        "softplus": "x @ jax.nn.softplus(p['w_in'])",
        "masked": "x @ (p['w_in'] * MASK)",
        "embedding": "p['w_in'][x]",
    }[spec["relation"]]
    p(f"    y = {rel}")
    if spec["bias"]:
        p("    y = y + p['b']")
    th = "p['th']" if spec["learned_threshold"] else "0.6"
    if spec["memoryless"]:
        decay = "0.0"
    elif spec["learned_decay"]:
        decay = "jax.nn.sigmoid(p['tau'])"
    else:
        decay = str(spec["decay"])
    pre = []
    for a in range(S):
        terms = [f"{decay} * s['{names[a]}']" if a == 0 else
                 f"{0.0 if spec['memoryless'] else spec['decays'][a]} * s['{names[a]}']"]
        if a == 0 or spec["input_to"][a]:
            terms.append("y")
        if not spec["memoryless"] and a > 0 and spec["coupling"][a]:
            terms.append(f"{spec['coupling'][a]} * jnp.tanh(s['{names[a - 1]}'])")
        if not spec["memoryless"] and a == 0 and S > 1 and spec["coupling"][0]:
            terms.append(f"- {abs(spec['coupling'][0])} * s['{names[S - 1]}']")
        p(f"    u{a} = " + " + ".join(terms).replace("+ -", "-"))
        f = spec["nonlinear"][a]
        expr = {"none": f"u{a}", "tanh": f"jnp.tanh(u{a})", "sigmoid": f"2.0 * jax.nn.sigmoid(u{a}) - 1.0",
                "max": f"jnp.maximum(u{a}, -0.5)", "where": f"jnp.where(u{a} > 0.2, u{a}, 0.5 * u{a})",
                "exp": f"jnp.exp(0.5 * jnp.tanh(u{a})) - 1.0"}[f]
        p(f"    pre{a} = {expr}")
        pre.append(f"pre{a}")
    sur, alpha = spec["surrogate"], spec["alpha"]
    if spelling == "tracec":
        p(f"    z = tracec.spike(pre0 - {th}, '{sur}', {alpha})")
    else:
        p(f"    z = user_spike(pre0 - {th})")
    reset = spec["reset"]
    new0 = {"none": "pre0", "soft": f"pre0 - z * {th}", "hard": "jnp.where(z > 0, 0.0, pre0)",
            "multiplicative": "pre0 * (1.0 - z)",
            "soft-stop-gradient": f"pre0 - tracec.stop_gradient(z) * {th}",
            "soft-detached": f"pre0 - jax.lax.stop_gradient(z) * {th}"}[reset]
    p(f"    new0 = {new0}")
    news = ["new0"] + pre[1:]
    if S > 1 and spec["spike_feeds_state"]:
        p(f"    new{S - 1} = {news[S - 1]} + 0.3 * z")
        news[S - 1] = f"new{S - 1}"
    # ---- what the readout reads
    feature = {"new": "new0", "pre-reset": "jnp.tanh(pre0)", "spike": "z",
               "old": f"jnp.tanh(s['{names[0]}'])",
               "mixed": f"z + 0.2 * jnp.tanh({news[-1]}) + 0.1 * s['{names[-1]}']"}[spec["reads"]]
    p(f"    out = ({feature}) @ p['w_out'] + 0.05 * jnp.tanh(new0) @ p['w_out']")
    state = ", ".join(f"'{n}': {v}" for n, v in zip(names, news))
    p(f"    return {{{state}}}, out")
    p("")
    # ---- the loss, in one of the spellings JAX users write
    p("def loss(out, target):")
    if spec["loss"] == "mse":
        p("    return jnp.mean((out - target) ** 2)")
    else:
        p("    logp = jax.nn.log_softmax(out, axis=-1)")
        if spec["loss"] == "xent-one-hot":
            p("    return -jnp.mean(jnp.sum(jax.nn.one_hot(target, N_OUT) * logp, axis=-1))")
        elif spec["loss"] == "xent-take-along-axis":
            p("    return -jnp.mean(jnp.take_along_axis(logp, target[:, None], axis=-1))")
        else:
            p("    return -jnp.mean(logp[jnp.arange(B), target])")
    p("")
    target = ("jax.ShapeDtypeStruct((B, N_OUT), jnp.float32)" if spec["loss"] == "mse"
              else "jax.ShapeDtypeStruct((B,), jnp.int32)")
    zeros = ", ".join(f"'{n}': jnp.zeros((b, H))" for n in names)
    p("model = tracec.Model(init_params=init_params,")
    p(f"                     init_state=lambda b: {{{zeros}}},")
    p("                     step=step, loss=loss,")
    if spec["relation"] == "embedding":
        p("                     input=jax.ShapeDtypeStruct((B,), jnp.int32),")
    elif spec.get("streams"):
        p("                     input={'a': jax.ShapeDtypeStruct((B, 1), jnp.float32),")
        p("                            'b': jax.ShapeDtypeStruct((B, N_IN - 1), jnp.float32)},")
    else:
        p("                     input=jax.ShapeDtypeStruct((B, N_IN), jnp.float32),")
    p(f"                     target={target})")
    header = textwrap.dedent(f"""\
        import jax
        import jax.numpy as jnp
        import numpy as np

        import tracec

        B, N_IN, H, N_OUT, VOCAB = {B}, {N_IN}, {H}, {N_OUT}, {VOCAB}
        MASK = (np.random.default_rng(3).random((N_IN, H)) < 0.6).astype(np.float32)

        """)
    return header + "\n".join(lines) + "\n"
