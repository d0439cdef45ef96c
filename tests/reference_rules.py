"""A reference of D-RTRL and ES-D-RTRL written directly in JAX from docs/design.md section 3.

Independent of tracec's passes: it evaluates the model's *jaxpr* (not StableHLO) with
an interpreter that can (a) stop gradients at recurrent mixing (a ``dot_general``
with a parameter operand), (b) add a perturbation ``eps`` at a relation's output
``y``, and (c) hold chosen new states fixed (replace them by free inputs). With those,
every quantity of the rules is one jax.jvp or jax.vjp:

    D_t[b,h,a,c]  jvp of the new states, tangent 1 on old state c (mixing cut;
                  a derived old state gets its recomputation's tangent)
    Df_t[b,h,a]   jvp of the new states, tangent 1 on eps at the relation's y (cut)
    δ_t[b,h,a]    vjp of m_t L_t, the group's own new states held as outputs
    δ⁻_t[b,h,c]   vjp of m_t L_t w.r.t. old state c, the group's new states held (the
                  paths that reach the loss without a new state; a derived old state
                  adds its cotangent times its recomputation's tangent); it contracts
                  with the traces of the previous step
    ∂h/∂p         jvp with tangent 1 on an element-wise parameter (cut)
    direct grad   vjp of m_t L_t w.r.t. θ with the new states of the groups θ feeds
                  held fixed

The structure (groups, relations) is given by the caller: in the tests it is the
hand-written table of tests/test_recurrence.py. Dense relations are ``y = x @ W``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

LAYOUT = {"transpose", "reshape", "convert_element_type", "broadcast_in_dim", "squeeze",
          "expand_dims"}
CALLS = {"pjit", "jit", "closed_call", "core_call"}


class Interp:
    """Evaluate a closed jaxpr with cuts, relation perturbations and held states."""

    def __init__(self, closed, n_param: int, cut: bool = False, eps: dict | None = None,
                 hold: dict | None = None):
        self.closed = closed
        self.n_param = n_param
        self.cut = cut
        self.eps = eps or {}      # relation id -> perturbation added to y
        self.hold = hold or {}    # outvar index -> value replacing it where defined
        self.relations: list[dict] = []  # (param index, x, y) in evaluation order

    def run(self, *args):
        jaxpr = self.closed.jaxpr
        held_vars = {}
        for k, v in self.hold.items():
            held_vars[jaxpr.outvars[k]] = v
        flags = [i < self.n_param for i in range(len(args))]
        param_of = {i: i for i in range(self.n_param)}
        outs, _ = self._eval(jaxpr, self.closed.consts, list(args), flags,
                             [param_of.get(i) for i in range(len(args))], held_vars)
        return outs

    def _eval(self, jaxpr, consts, args, flags, params, held):
        env, flag, pidx = {}, {}, {}

        def read(v):
            return v.val if isinstance(v, jcore.Literal) else env[v]

        def write(v, val, f=False, p=None):
            if v in held:
                val = held[v]
            env[v], flag[v], pidx[v] = val, f, p

        for v, c in zip(jaxpr.constvars, consts):
            write(v, c)
        for v, a, f, p in zip(jaxpr.invars, args, flags, params):
            write(v, a, f, p)
        for eqn in jaxpr.eqns:
            vals = [read(v) for v in eqn.invars]
            fl = [False if isinstance(v, jcore.Literal) else flag[v] for v in eqn.invars]
            pi = [None if isinstance(v, jcore.Literal) else pidx[v] for v in eqn.invars]
            name = eqn.primitive.name
            if name in CALLS:
                sub = eqn.params["jaxpr"]
                outs, sub_flags = self._eval(sub.jaxpr, sub.consts, vals, fl, pi, {})
                for v, o, f in zip(eqn.outvars, outs, sub_flags):
                    write(v, o, f)
                continue
            if name in ("dot_general", "conv_general_dilated") and any(fl[:2]):
                side = 1 if fl[1] else 0
                out = eqn.primitive.bind(*vals, **eqn.params)
                rid = len(self.relations)
                self.relations.append({"param": pi[side], "x": vals[1 - side], "y": out,
                                       "w": vals[side], "side": side, "eqn": eqn})
                if self.cut:
                    out = jax.lax.stop_gradient(out)
                if rid in self.eps:
                    out = out + self.eps[rid]
                write(eqn.outvars[0], out)
                continue
            out = eqn.primitive.bind(*vals, **eqn.primitive.get_bind_params(eqn.params))
            outs = out if eqn.primitive.multiple_results else [out]
            through = name in LAYOUT and fl and fl[0]
            for v, o in zip(eqn.outvars, outs):
                write(v, o, bool(through), pi[0] if through else None)
        return [read(v) for v in jaxpr.outvars], [
            False if isinstance(v, jcore.Literal) else flag[v] for v in jaxpr.outvars]


def per_neuron(pshape, sshape) -> bool:
    """A parameter shaped like a suffix of its neurons' shape (a scalar, [H])."""
    return tuple(pshape) == tuple(sshape)[len(sshape) - len(pshape):]


def column_map(J: list, batched: bool) -> np.ndarray:
    """From Jacobians of a group's states [B, H, (B,) M] w.r.t. a relation's output
    [B, M] (batched) or a parameter [M]: the neuron k that column m feeds (-1: none).
    Raises if a column feeds several neurons or another batch element."""
    nz = sum(np.abs(j) for j in J) != 0
    B, H = nz.shape[:2]
    M = nz.shape[-1]
    if batched:
        same = nz[np.arange(B), :, np.arange(B), :]          # [B, H, M]
        if nz.sum() != same.sum():
            raise AssertionError("a relation output element feeds another batch element")
        nz = same
    hit = nz.any(axis=0)                                      # [H, M]
    if (hit.sum(axis=0) > 1).any():
        raise AssertionError("a relation output element feeds several neurons")
    return np.where(hit.any(axis=0), hit.argmax(axis=0), -1)


def pick(J: np.ndarray, cm: np.ndarray, batched: bool) -> jnp.ndarray:
    """``out[b, m] = J[b, cm[m], (b,) m]`` (zero where cm is -1)."""
    B = J.shape[0]
    k = np.maximum(cm, 0)
    m = np.arange(len(cm))
    out = (J[np.arange(B)[:, None], k[None, :], np.arange(B)[:, None], m[None, :]] if batched
           else J[:, k, m])
    return jnp.asarray(np.where(cm >= 0, out, 0.0), jnp.float32)


def on_columns(v, cm: np.ndarray):
    """A per-neuron quantity [B, H, ...] laid out by column: ``out[b, m] = v[b, cm[m]]``."""
    out = jnp.take(v, np.maximum(cm, 0), axis=1)
    mask = (cm >= 0).reshape((1, -1) + (1,) * (v.ndim - 2))
    return jnp.where(mask, out, 0.0)


def conv_rule(rel: dict, states_of_eps, D, delta, delta_prev, traces: dict, key,
              algorithm: str, alpha: float, t: int):
    """A convolution relation y = conv(x, W), y laid out as the neurons [B, N] flattened.
    D-RTRL, literally: ε[b,n,w,a] = Σ_c D ε[b,n,w,c] + Df[b,n,a] ∂y[b,n]/∂W[w] (the
    Jacobian of the convolution w.r.t. its kernel, by jax.jacfwd). ES-D-RTRL: εx, εf,
    and G = the kernel cotangent of conv(εx, ·) at Σ δ εf (by jax.vjp)."""
    eqn, x, w = rel["eqn"], rel["x"], rel["w"]

    def conv(xv, wv):
        operands = (xv, wv) if rel["side"] == 1 else (wv, xv)
        return eqn.primitive.bind(*operands, **eqn.params)
    yshape = rel["y"].shape
    _, df = jax.jvp(states_of_eps, [jnp.zeros(yshape)], [jnp.ones(yshape)])
    Df = jnp.stack(df, -1)                                        # [B,N,a]
    if algorithm == "d-rtrl":
        Jy = jax.jacfwd(lambda wv: conv(x, wv))(w)
        Jy = Jy.reshape(yshape[0], Df.shape[1], -1)              # [B,N,|W|]
        eps_prev = traces.get(key, jnp.zeros(Jy.shape + Df.shape[-1:]))
        eps = jnp.einsum("bnac,bnwc->bnwa", D, eps_prev) + Jy[..., None] * Df[:, :, None, :]
        traces[key] = eps
        return (jnp.einsum("bna,bnwa->w", delta, eps)
                + jnp.einsum("bnc,bnwc->w", delta_prev, eps_prev)).reshape(w.shape)
    ex_prev = traces.get(key + ("x",), jnp.zeros(x.shape))
    ef_prev = traces.get(key + ("f",), jnp.zeros(Df.shape))
    ex = alpha * ex_prev + x
    ef = alpha * jnp.einsum("bnac,bnc->bna", D, ef_prev) + (1 - alpha) * Df
    traces[key + ("x",)], traces[key + ("f",)] = ex, ef
    sig = (jnp.einsum("bna,bna->bn", delta, ef) / (1 - alpha ** (t + 1))).reshape(yshape)
    G = jax.vjp(lambda wv: conv(ex, wv), w)[1](sig)[0]
    if t > 0:  # δ⁻ with the previous step's factors
        sig_prev = (jnp.einsum("bnc,bnc->bn", delta_prev, ef_prev) / (1 - alpha ** t)).reshape(yshape)
        G = G + jax.vjp(lambda wv: conv(ex_prev, wv), w)[1](sig_prev)[0]
    return G


def rules_gradient(model, params, xs, targets, mask, *, algorithm: str, decay: float,
                   groups: list[dict], state_names: list[str]):
    """Summed gradient ``Σ_t m_t G_t`` (dict param leaf name -> array) and losses [T].

    ``groups``: [{"states": [...], "derived": {name: [source names]}}].
    """
    p_leaves, p_tree = jax.tree_util.tree_flatten(params)
    state0 = model.init_state(xs.shape[1])
    s_leaves, s_tree = jax.tree_util.tree_flatten(state0)
    n_p, n_s = len(p_leaves), len(s_leaves)
    p_names = ["/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
               for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]

    def flat(*leaves):
        p = jax.tree_util.tree_unflatten(p_tree, leaves[:n_p])
        s = jax.tree_util.tree_unflatten(s_tree, leaves[n_p:n_p + n_s])
        new_s, out = model.step(p, s, leaves[-1])
        return tuple(jax.tree_util.tree_leaves(new_s)) + tuple(jax.tree_util.tree_leaves(out))

    closed = jax.make_jaxpr(flat)(*p_leaves, *s_leaves, xs[0])
    idx = {n: i for i, n in enumerate(state_names)}

    # Which relation ids (in evaluation order) belong to which param, and their shapes.
    probe = Interp(closed, n_p)
    probe.run(*p_leaves, *s_leaves, xs[0])
    rels = [(r["param"], r["x"].shape, r["y"].shape) for r in probe.relations]

    # Which relations and element-wise parameters feed which group: decided once, on
    # structure (tangents at random points), never from one step's values (a relation's
    # Df can be zero at t = 0 when it is multiplied by a state that starts at zero). The
    # union over a few points: at any one point a hard reset can zero a whole column.
    rng = np.random.default_rng(12345)
    points = [([jnp.asarray(scale * rng.normal(size=np.shape(s)), jnp.float32) for s in s_leaves],
               jnp.asarray(scale * rng.normal(size=np.shape(xs[0])), jnp.float32))
              for scale in (0.1, 1.0, 1.0)]
    feeds: dict = {}
    cols: dict = {}  # (relation or element-wise parameter, group) -> neuron of each column
    for gi_, g_ in enumerate(groups):
        prim_ = [idx[n] for n in g_["states"]]
        for rid, (_, _, yshape) in enumerate(rels):
            J = []
            for rand_state, rand_x in points:
                def f_(e, rid=rid, rand_state=rand_state, rand_x=rand_x):
                    outs = Interp(closed, n_p, cut=True, eps={rid: e}).run(*p_leaves, *rand_state, rand_x)
                    return [outs[i] for i in prim_]
                J += list(jax.jacfwd(f_)(jnp.zeros(yshape)))
            feeds[("rel", rid, gi_)] = any(bool(jnp.any(v != 0)) for v in J)
            cols[("rel", rid, gi_)] = column_map(
                [np.asarray(v).reshape(v.shape[0], -1, yshape[0], math.prod(yshape[1:])) for v in J],
                batched=True)
        for pi in range(n_p):
            t_, J = [], []
            for rand_state, rand_x in points:
                def h_(pv, pi=pi, rand_state=rand_state, rand_x=rand_x):
                    pl = list(p_leaves)
                    pl[pi] = pv
                    outs = Interp(closed, n_p, cut=True).run(*pl, *rand_state, rand_x)
                    return [outs[i] for i in prim_]
                t_ += list(jax.jvp(h_, [p_leaves[pi]], [jnp.ones_like(p_leaves[pi])])[1])
                J.append(h_)
            feeds[("ew", pi, gi_)] = any(bool(jnp.any(v != 0)) for v in t_)
            if feeds[("ew", pi, gi_)] and not per_neuron(np.shape(p_leaves[pi]), np.shape(t_[0])):
                cols[("ew", pi, gi_)] = column_map(
                    [np.asarray(v).reshape(v.shape[:2] + (-1,))
                     for h_ in J for v in jax.jacfwd(h_)(p_leaves[pi])], batched=False)

    grads = {n: np.zeros(np.shape(v), np.float64) for n, v in zip(p_names, p_leaves)}
    losses = []
    state = [jnp.asarray(s) for s in s_leaves]
    # Traces, per group: {rid: ε} (D-RTRL) or εx per rid + εf per rid (ES-D-RTRL);
    # element-wise params: {pidx: ε}.
    traces: dict = {}
    deriv_prev: dict = {}  # derived state d -> {source c: ∂d/∂c at the previous step}
    alpha = decay

    def loss_of(outs, t):
        o = outs[n_s:]
        out = o[0] if len(o) == 1 else tuple(o)
        return mask[t] * model.loss(out, targets[t])

    for t in range(xs.shape[0]):
        x = xs[t]
        args = (*p_leaves, *state, x)
        base = Interp(closed, n_p).run(*args)
        losses.append(float(loss_of(base, t)))
        for gi, g in enumerate(groups):
            prim = [idx[n] for n in g["states"]]
            derived = {idx[d]: [idx[s] for s in src] for d, src in g.get("derived", {}).items()}
            S = len(prim)

            # D_t: tangent 1 on old state c, and the recomputation tangent on derived states.
            def new_states(*st):
                full = list(state)
                for i, v in zip(prim + list(derived), st):
                    full[i] = v
                outs = Interp(closed, n_p, cut=True).run(*p_leaves, *full, x)
                return [outs[i] for i in prim]

            D = []
            for c in prim:
                tan = [jnp.ones_like(state[c]) if i == c else jnp.zeros_like(state[i]) for i in prim]
                tan += [deriv_prev.get(d, {}).get(c, jnp.zeros_like(state[d])) for d in derived]
                _, out_t = jax.jvp(new_states, [state[i] for i in prim + list(derived)], tan)
                D.append(jnp.stack(out_t, -1))           # [B,H,a]
            D = jnp.stack(D, -1)                          # [B,H,a,c] (neurons flattened)
            D = D.reshape(D.shape[0], -1, S, S)

            # δ_t: the group's own new states held as outputs (derived ones recomputed).
            held_now = {i: base[i] for i in prim}

            def loss_held(*hv):
                outs = Interp(closed, n_p, hold=dict(zip(prim, hv))).run(*args)
                return loss_of(outs, t)

            delta = jnp.stack(jax.grad(loss_held, argnums=tuple(range(S)))(*held_now.values()), -1)
            delta = delta.reshape(delta.shape[0], -1, S)

            # δ⁻_t: the loss w.r.t. the old states along the paths that avoid the group's
            # new states (held); a derived old state passes its part on to its sources.
            def loss_old(*old):
                full = list(state)
                for i, v in zip(prim + list(derived), old):
                    full[i] = v
                outs = Interp(closed, n_p, hold=held_now).run(*p_leaves, *full, x)
                return loss_of(outs, t)

            old_cots = jax.grad(loss_old, argnums=tuple(range(S + len(derived))))(
                *[state[i] for i in prim + list(derived)])
            dm = []
            for k, c in enumerate(prim):
                v = old_cots[k]
                for j, d in enumerate(derived):
                    if c in derived[d] and c in deriv_prev.get(d, {}):
                        v = v + old_cots[S + j] * deriv_prev[d][c]
                dm.append(v)
            delta_prev = jnp.stack(dm, -1)
            delta_prev = delta_prev.reshape(delta_prev.shape[0], -1, S)

            # ∂(derived)/∂(source) at this step, for next step's D.
            new_deriv = {}
            for d, srcs in derived.items():
                new_deriv[d] = {}
                for c in srcs:
                    def derived_of(hc, c=c, d=d):
                        return Interp(closed, n_p, hold={c: hc}).run(*args)[d]
                    new_deriv[d][c] = jax.jvp(derived_of, [base[c]], [jnp.ones_like(base[c])])[1]

            # Relations feeding this group, in the layout of their output y [B, M]: column m
            # feeds neuron cols[m] (the identity, or e.g. an LSTM's four fused gates).
            for rid, (pi, xshape, yshape) in enumerate(rels):
                if not feeds[("rel", rid, gi)]:
                    continue
                cm = cols[("rel", rid, gi)]

                def states_of_eps(e, rid=rid):
                    outs = Interp(closed, n_p, cut=True, eps={rid: e}).run(*args)
                    return [outs[i].reshape(outs[i].shape[0], -1) for i in prim]
                probe = Interp(closed, n_p)
                probe.run(*args)
                if probe.relations[rid]["eqn"].primitive.name == "conv_general_dilated":
                    assert np.array_equal(cm, np.arange(len(cm))), "conv output is not the neurons"
                    G = conv_rule(probe.relations[rid], states_of_eps, D, delta, delta_prev, traces,
                                  ("conv", rid, id(g)), algorithm, alpha, t)
                    grads[p_names[pi]] += np.asarray(G, np.float64)
                    continue
                if np.array_equal(cm, np.arange(yshape[1])):
                    _, df = jax.jvp(states_of_eps, [jnp.zeros(yshape)], [jnp.ones(yshape)])
                    Df = jnp.stack(df, -1)                # [B,M,a]
                else:  # the one non-zero of each column of the full Jacobian
                    J = jax.jacfwd(states_of_eps)(jnp.zeros(yshape))
                    Df = jnp.stack([pick(np.asarray(j), cm, batched=True) for j in J], -1)
                Dy, dy, dmy = on_columns(D, cm), on_columns(delta, cm), on_columns(delta_prev, cm)
                xr = probe.relations[rid]["x"]
                key = ("dense", rid, id(g))
                if algorithm == "d-rtrl":
                    eps_prev = traces.get(key, jnp.zeros((xr.shape[0], xr.shape[1], yshape[1], S)))
                    eps_t = jnp.einsum("bhac,bihc->biha", Dy, eps_prev) + \
                        xr[:, :, None, None] * Df[:, None, :, :]
                    traces[key] = eps_t
                    G = (jnp.einsum("bha,biha->ih", dy, eps_t)
                         + jnp.einsum("bhc,bihc->ih", dmy, eps_prev))
                else:
                    ex_prev = traces.get(key + ("x",), jnp.zeros(xr.shape))
                    ef_prev = traces.get(key + ("f",), jnp.zeros(Df.shape))
                    ex = alpha * ex_prev + xr
                    ef = alpha * jnp.einsum("bhac,bhc->bha", Dy, ef_prev) + (1 - alpha) * Df
                    traces[key + ("x",)], traces[key + ("f",)] = ex, ef
                    n = t  # steps since reset
                    gsig = jnp.einsum("bha,bha->bh", dy, ef) / (1 - alpha ** (n + 1))
                    G = jnp.einsum("bi,bh->ih", ex, gsig)
                    if n > 0:  # δ⁻ pairs with the previous step's factors
                        gprev = jnp.einsum("bhc,bhc->bh", dmy, ef_prev) / (1 - alpha ** n)
                        G = G + jnp.einsum("bi,bh->ih", ex_prev, gprev)
                grads[p_names[pi]] += np.asarray(G, np.float64)

            # Element-wise parameters (bias, time constant, threshold): exact trace per
            # neuron, or per element when the parameter is not a per-neuron value (an
            # LSTM's fused gate bias [4H]: element m feeds neuron cols[m]).
            for pi in range(n_p):
                if any(r[0] == pi for r in rels) or not feeds[("ew", pi, gi)]:
                    continue

                def states_of_p(pv, pi=pi):
                    pl = list(p_leaves)
                    pl[pi] = pv
                    outs = Interp(closed, n_p, cut=True).run(*pl, *state, x)
                    return [outs[i] for i in prim]
                key = ("ew", pi, id(g))
                if ("ew", pi, gi) not in cols:
                    _, dp = jax.jvp(states_of_p, [p_leaves[pi]], [jnp.ones_like(p_leaves[pi])])
                    dp = jnp.stack(dp, -1)
                    dp = dp.reshape(dp.shape[0], -1, S)
                    e_prev = traces.get(key, jnp.zeros(dp.shape))
                    e = jnp.einsum("bhac,bhc->bha", D, e_prev) + dp
                    traces[key] = e
                    G = jnp.einsum("bha,bha->h", delta, e) + jnp.einsum("bhc,bhc->h", delta_prev, e_prev)
                else:
                    cm = cols[("ew", pi, gi)]
                    J = jax.jacfwd(states_of_p)(p_leaves[pi])
                    dp = jnp.stack([pick(np.asarray(j).reshape(j.shape[:2] + (-1,)), cm,
                                         batched=False) for j in J], -1)   # [B,M,a]
                    e_prev = traces.get(key, jnp.zeros(dp.shape))
                    e = jnp.einsum("bmac,bmc->bma", on_columns(D, cm), e_prev) + dp
                    traces[key] = e
                    G = (jnp.einsum("bma,bma->m", on_columns(delta, cm), e)
                         + jnp.einsum("bmc,bmc->m", on_columns(delta_prev, cm), e_prev))
                grads[p_names[pi]] += np.asarray(G, np.float64).reshape(grads[p_names[pi]].shape)
            deriv_prev.update(new_deriv)

        # Direct same-step gradient with the new states of the groups each parameter
        # feeds held fixed (a readout feeds none: its whole same-step gradient).
        fed = {pi: frozenset(gi for gi in range(len(groups))
                             if feeds[("ew", pi, gi)] or any(feeds[("rel", rid, gi)]
                                                             for rid, r in enumerate(rels)
                                                             if r[0] == pi))
               for pi in range(n_p)}
        for held_groups in set(fed.values()):
            held = {i: base[i] for gi in held_groups for i in [idx[n] for n in groups[gi]["states"]]}

            def loss_params(*pl, held=held):
                outs = Interp(closed, n_p, hold=held).run(*pl, *state, x)
                return loss_of(outs, t)

            direct = jax.grad(loss_params, argnums=tuple(range(n_p)))(*p_leaves)
            for pi, (n, gd) in enumerate(zip(p_names, direct)):
                if fed[pi] == held_groups:
                    grads[n] += np.asarray(gd, np.float64)
        state = list(base[:n_s])
    return grads, np.array(losses)


def bptt_function(model):
    """A jitted ``(params, xs, targets, mask) -> {name: gradient}``: the exact gradient of
    Σ_t m_t L_t through the whole sequence (jax.grad of a scan), for repeated use."""
    def total(p, xs, targets, mask):
        def body(s, inp):
            x, y, m = inp
            s, out = model.step(p, s, x)
            return s, m * model.loss(out, y)
        _, ls = jax.lax.scan(body, model.init_state(model.batch), (xs, targets, mask))
        return jnp.sum(ls)
    grad = jax.jit(jax.grad(total))

    def run(params, xs, targets, mask):
        g = grad(params, xs, targets, mask)
        names = ["/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
                 for path, _ in jax.tree_util.tree_flatten_with_path(g)[0]]
        return {n: np.asarray(v, np.float64) for n, v in zip(names, jax.tree_util.tree_leaves(g))}
    return run


def bptt_gradient(model, params, xs, targets, mask):
    """The exact gradient of Σ_t m_t L_t through the whole sequence (jax.grad of a scan)."""
    return bptt_function(model)(params, xs, targets, mask)


def cosine(a: dict, b: dict) -> float:
    va = np.concatenate([a[k].ravel() for k in sorted(a)])
    vb = np.concatenate([b[k].ravel() for k in sorted(a)])
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb) + 1e-30))


__all__ = ["Interp", "rules_gradient", "column_map", "pick", "on_columns", "bptt_gradient", "bptt_function", "cosine", "math"]
