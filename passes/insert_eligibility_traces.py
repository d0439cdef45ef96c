"""insert-eligibility-traces: the online learning rules of DESIGN.md section 3.

Builds ``@learn_step`` from ``@step`` and ``@loss``: one time step that also updates
eligibility traces and returns this step's gradient ``G_t`` of every parameter.

    learn_step(params..., state..., traces..., n, x, target, mask)
        -> (new_state..., new_traces..., grads..., loss, outputs...)

``n`` is the number of steps since the last reset (ES-D-RTRL's bias correction), ``mask``
a scalar that gates the loss (``loss`` returned is the unmasked L_t). Per hidden group
(states a, c of one neuron):

- ``D_t[a][c]``: forward mode from the old state c (tangent 1; a derived old state gets
  the carried tangent of its recomputation), recurrent mixing cut;
- ``Df_t[a]``: forward mode seeded with 1 at the relation's output y, mixing cut;
- ``δ_t[a]``: reverse mode from ``mask·L_t`` to the group's new states, the group's
  other new states held (cut);
- ``δ⁻_t[c]``: reverse mode from ``mask·L_t`` to the group's old states, the group's new
  states held (the paths to the loss that avoid them: a spike computed before a reset
  and read by the readout); it contracts with the previous step's traces, D-RTRL
  ``Σ_b Σ_c δ⁻[c] ε_{t-1}[c]``, ES-D-RTRL ``εx_{t-1}ᵀ (Σ_c δ⁻[c] εf_{t-1}[c]) / (1-α^n)``;
- D-RTRL dense trace ``ε[a] = Σ_c D[a][c] ε[c] + x Df[a]``, stored [H, B, I],
  ``G = Σ_b Σ_a δ[a] ε[a]``; ES-D-RTRL ``εx = α εx + x``,
  ``εf[a] = α Σ_c D[a][c] εf[c] + (1-α) Df[a]``, ``G = εxᵀ (Σ_a δ[a] εf[a]) / (1-α^{n+1})``;
- element-wise parameters: ``ε[a] = Σ_c D[a][c] ε[c] + ∂h^a/∂p`` under both rules;
- every parameter: plus its direct same-step gradient with the old states and the new
  states of the groups it feeds held.

Options: ``algorithm`` (``d-rtrl`` | ``es-d-rtrl``), ``decay`` (α in [0, 1)).
Before: ``@step`` analysed (find-param-relations has run), ``@loss`` exists.
After: ``@learn_step`` (private) with roles on arguments and results; ``@step`` unchanged.
Relations whose output y [B, M] reaches its neurons [B, H] through index maps (an
LSTM's fused gates) keep their traces in y's layout, with D and δ spread over the
columns; convolution relations keep εx like the input and εf like the neurons
(ES-D-RTRL) or a trace per kernel entry and neuron fed by the input's patches (D-RTRL).
Diagnostics: a relation kind or layout the rules do not cover (gathered, an output
element feeding several neurons, values moving between batch elements), a model
without ``loss``/``target``, a model with no trainable relation.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (DenseIntOrFPElementsAttr, FunctionType, ModuleOp, TensorType,
                                   f32, i32)
from xdsl.ir import Block, Region
from xdsl.passes import ModulePass

from tracec.diagnostics import TracecError
from tracec.dialects import stablehlo as shlo
from tracec.dialects.tracec import (FactoredGradOp, InputTraceOp, NeuronTraceOp, ParamTraceOp,
                                    TraceGradOp)
from tracec.passes.ad import Emitter, jvp, remove_dead_code, vjp
from tracec.passes.ad_rules import ConvParams, conv_params, conv_transpose_rhs, dot_dims
from tracec.passes.common import from_attr, functions, op_error, role_attrs, roles, to_attr
from tracec.passes.dataflow import SEVERAL, UNREACHED, StepGraph, neuron_labels
from tracec.passes.find_hidden_groups import derived_map
from tracec.passes.find_param_relations import param_relations


def _shape(v) -> list[int]:
    t = v if isinstance(v, TensorType) else v.type
    return list(t.get_shape())


def _carried(D: dict, prim: list[int], a: int, prev_of) -> tuple[list, list]:
    """The carried part Σ_c D[a][c] ⊙ prev_c of state a's trace, as (jac, prev) operand
    lists for a trace op (pairs whose D is zero are left out)."""
    pairs = [(D[(a, c)], prev_of(c)) for c in prim if D[(a, c)] is not None]
    return [j for j, _ in pairs], [e for _, e in pairs]


def _columns(g: StepGraph, rel: dict, prim: list[int], y, labels: dict) -> list[int] | None:
    """Which neuron of its batch row each column of the relation's output ``y`` [B, M]
    feeds (-1: none of this group's); None when ``y`` is laid out as the neurons.
    ``labels``: ``neuron_labels`` of the group."""
    rop, what = rel["_op"], f"the {rel['kind']} relation of '{rel['param']}'"
    states = [g.state_results[a] for a in prim]
    sshape = _shape(states[0])
    same = all(_shape(s) == sshape for s in states)
    found = labels.get(y)
    neuron = np.full(_shape(y), UNREACHED, np.int64) if found is None else found
    if same and _shape(y) == sshape and (neuron == np.arange(neuron.size).reshape(sshape)).all():
        return None
    if not same or len(sshape) != 2 or len(_shape(y)) != 2 or _shape(y)[0] != sshape[0]:
        raise op_error(rop, f"insert-eligibility-traces: {what} has output {_shape(y)} and "
                            f"neurons {[_shape(s) for s in states]}; the online rules need "
                            "[B, M] feeding neurons [B, H]")
    if (neuron == SEVERAL).any():
        raise op_error(rop, f"insert-eligibility-traces: an element of the output of {what} "
                            "reaches several neurons",
                       hint="each output element must feed one neuron, through element-wise "
                            "ops and slices, splits or reshapes")
    B, H = sshape
    reached = neuron >= 0
    cols = np.where(reached, neuron % H, -1)
    if ((neuron // H != np.arange(B)[:, None]) & reached).any() or (cols != cols[0]).any():
        raise op_error(rop, f"insert-eligibility-traces: {what} moves values between batch "
                            "elements on the way to its neurons")
    cols = [int(c) for c in cols[0]]
    return None if cols == list(range(H)) else cols


def _spread(em: Emitter, v, cols: list[int] | None):
    """A per-neuron value [B, H] laid out as a relation's output [B, M]: column m holds
    neuron ``cols[m]`` (zero where -1). An LSTM's fused gates are four copies side by
    side; other layouts are slices of ``v`` and zeros, concatenated."""
    if v is None or cols is None:
        return v
    B, H = _shape(v)
    M = len(cols)
    if M % H == 0 and cols == [m % H for m in range(M)]:
        return em.reshape(em.broadcast_in_dim(v, [B, M // H, H], [0, 2]), [B, M])
    parts, m = [], 0
    while m < M:
        start = m
        if cols[m] < 0:
            while m < M and cols[m] < 0:
                m += 1
            parts.append(em.zeros(TensorType(v.type.element_type, [B, m - start])))
        else:
            while m + 1 < M and cols[m + 1] == cols[m] + 1:
                m += 1
            m += 1
            parts.append(em.slice(v, [0, cols[start]], [B, cols[start] + m - start]))
    return em.concatenate(parts, 1)


def _entry(y):
    """Where a relation's output joins the other inputs of its neurons: ``y`` followed
    through additions while it has a single use. Until there the tangent of ``y``
    passes unchanged, so relations with the same entry have the same Df."""
    v = y
    while len(list(v.uses)) == 1:
        use = next(iter(v.uses))
        op = use.operation
        if not (isinstance(op, shlo.AddOp) or (isinstance(op, shlo.SubtractOp) and use.index == 0)):
            break
        v = op.results[0]
    return v


def _conv_relation(g: StepGraph, rel: dict, prim: list[int], labels: dict) -> ConvParams:
    """The convolution of a relation, checked: kernel = the parameter, batch first,
    output laid out as the neurons, no feature or batch groups."""
    rop, what = rel["_op"], f"the convolution relation of '{rel['param']}'"
    if rel.get("param_side") != "rhs":
        raise op_error(rop, f"insert-eligibility-traces: {what} must take the parameter as "
                            "its kernel (the right-hand operand)")
    cp = conv_params(rop)
    if cp.lhs_spec[0] != 0 or cp.out_spec[0] != 0 or cp.feature_group_count != 1 \
            or cp.batch_group_count != 1:
        raise op_error(rop, f"insert-eligibility-traces: {what} must have the batch as its "
                            "first dimension and no feature or batch groups")
    if _columns(g, rel, prim, rop.results[0], labels) is not None:
        raise op_error(rop, f"insert-eligibility-traces: the output of {what} must be laid "
                            "out as its neurons")
    return cp


def _patches(em: Emitter, x, w, y, cp: ConvParams):
    """D-RTRL's input of a convolution, per neuron and laid out like its trace: ``[N, B, J]``
    holding at [n, b, j] the element of x that kernel entry j = (input channel, offset)
    multiplies at neuron n's position. A convolution of x with a one-hot kernel of J
    output channels."""
    xs, ws, ys = _shape(x), _shape(w), _shape(y)
    cin, ksp = xs[cp.lhs_spec[1]], [ws[d] for d in cp.rhs_spec[2:]]
    K = math.prod(ksp)
    canon = np.zeros([cin * K, cin] + ksp, np.float32)  # (out, in, spatial...)
    for c in range(cin):
        for k in range(K):
            canon[(c * K + k, c) + np.unravel_index(k, ksp)] = 1.0
    kernel = canon.transpose(_inverse(cp.rhs_spec))
    kt = TensorType(f32, list(kernel.shape))
    onehot = em.one(shlo.ConstantOp, [], kt, {"value": DenseIntOrFPElementsAttr.from_list(
        kt, kernel.ravel().tolist())})
    patches = em.convolution(x, onehot, lhs_spec=cp.lhs_spec, rhs_spec=cp.rhs_spec,
                             out_spec=cp.out_spec, strides=cp.strides, padding=cp.padding,
                             lhs_dilation=cp.lhs_dilation, rhs_dilation=cp.rhs_dilation)
    f = cp.out_spec[1]
    spatial = [d for d in range(1, len(ys)) if d != f]
    per_position = em.transpose(patches, [0, f] + spatial)             # [B, J, spatial...]
    full = em.broadcast_in_dim(per_position, [ys[0], cin * K] + ys[1:],
                               [0, 1] + [1 + d for d in spatial])     # [B, J, *y[1:]]
    flat = em.reshape(full, [ys[0], cin * K, math.prod(ys[1:])])       # [B, J, N]
    return em.transpose(flat, [2, 0, 1])


def _kernel_of(em: Emitter, G, x, w, y, cp: ConvParams):
    """A gradient per (kernel entry j, neuron) [J, N] summed over positions and laid
    out as the kernel."""
    ws, ys = _shape(w), _shape(y)
    ksp = [ws[d] for d in cp.rhs_spec[2:]]
    cin, cout = _shape(x)[cp.lhs_spec[1]], ys[cp.out_spec[1]]
    f = cp.out_spec[1]
    spatial = [d for d in range(1, len(ys)) if d != f]
    per_channel = em.reduce_sum(em.reshape(G, [_shape(G)[0]] + ys[1:]),
                                spatial)                              # [J, Cout]
    split = em.reshape(per_channel, [cin] + ksp + [cout])
    canon = em.transpose(split, [len(ksp) + 1, 0] + list(range(1, len(ksp) + 1)))
    return em.transpose(canon, _inverse(cp.rhs_spec))


def _inverse(spec) -> list[int]:
    """The permutation that puts canonical axis c (out/batch, in/feature, spatial...)
    at position ``spec[c]``."""
    inv = [0] * len(spec)
    for c, d in enumerate(spec):
        inv[d] = c
    return inv


@dataclass(frozen=True)
class InsertEligibilityTracesPass(ModulePass):
    name = "insert-eligibility-traces"

    algorithm: str = "es-d-rtrl"
    decay: float = 0.9

    @staticmethod
    def _replace_return(ret: func.ReturnOp, operands) -> func.ReturnOp:
        new = func.ReturnOp(*operands)
        new.location = ret.location
        ret.parent_block().insert_op_before(new, ret)
        ret.detach()
        ret.erase()
        return new

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.algorithm not in ("d-rtrl", "es-d-rtrl"):
            raise TracecError(f"insert-eligibility-traces: unknown algorithm '{self.algorithm}'",
                              hint="use d-rtrl or es-d-rtrl")
        if not 0.0 <= self.decay < 1.0:
            raise TracecError(f"insert-eligibility-traces: decay must be in [0, 1), got {self.decay}")
        fns = functions(op)
        if "loss" not in fns:
            raise TracecError("online learning needs a loss: give tracec.Model a loss(output, "
                              "target) and a target spec")
        step, loss = fns["step"], fns["loss"]
        if "tracec.groups" not in step.attributes:
            raise op_error(step, "insert-eligibility-traces needs the recurrence analyses first")
        g = StepGraph(step)
        groups = from_attr(step.attributes["tracec.groups"])
        relations, readout = param_relations(g)
        if not relations:
            raise op_error(step, "the model has no trainable relation: no parameter reaches a "
                                 "hidden state", hint="online learning trains weights that feed "
                                                      "recurrent neurons")
        derived = derived_map(g)
        name_idx = {n: i for i, n in enumerate(g.state_names)}
        n_p, n_s = len(g.param_args), len(g.state_args)

        # ---- the carried traces (their layout decides the new function's signature)
        traces: list[tuple[tuple, str, TensorType]] = []  # (key, name, type)

        def add_trace(key, name, t):
            traces.append((key, name, t))

        prim_of = []
        for gi, grp in enumerate(groups):
            prim = [name_idx[n] for n in grp["states"]]
            prim_of.append(prim)
            for d in [name_idx[n] for n in grp["derived"]]:
                for c in derived[d]:
                    add_trace(("jac", d, c), f"jac/{g.state_names[d]}/{g.state_names[c]}",
                              g.state_args[d].type)
        label_cache: dict = {}

        def group_labels(gi):
            if gi not in label_cache:
                label_cache[gi] = neuron_labels(g, [g.state_results[a] for a in prim_of[gi]])
            return label_cache[gi]

        rel_plan = []
        ef_owner: dict = {}
        per_neuron: set = set()  # (parameter, group) with one per-neuron trace
        for ri, rel in enumerate(relations):
            rop = rel["_op"]
            pidx = g.param_names.index(rel["param"])
            for gi in rel["groups"]:
                prim = prim_of[gi]
                st = g.state_args[prim[0]].type
                if rel["kind"] == "dense":
                    y = rop.results[0]
                    if rel.get("param_side") != "rhs" or len(_shape(rop.operands[0])) != 2 \
                            or len(_shape(y)) != 2 \
                            or dot_dims(rop) not in (([], [], [1], [0]), ([], [], [1], [1])):
                        raise op_error(rop, f"insert-eligibility-traces: the dense relation of "
                                            f"'{rel['param']}' must be y = x @ W with x [B, I] "
                                            "and y [B, M]",
                                       hint="write the matmul as x @ W with the batch first")
                    cols = _columns(g, rel, prim, y, group_labels(gi))
                    (B, I), M = _shape(rop.operands[0]), _shape(y)[1]
                    if self.algorithm == "d-rtrl":
                        for a in prim:
                            add_trace(("eps", ri, gi, a), f"eps/{rel['param']}/{g.state_names[a]}",
                                      TensorType(f32, [M, B, I]))
                    else:
                        if ("ex", ri) not in [t[0] for t in traces]:
                            add_trace(("ex", ri), f"ex/{rel['param']}", TensorType(f32, [B, I]))
                        # relations summed into the same neurons (x·W_in + z·W_rec) have
                        # the same Df, so the same εf: the first one keeps it for all
                        owner = ef_owner.setdefault((gi, _entry(y)), ri)
                        ef_owner[(ri, gi)] = owner
                        if owner == ri:
                            for a in prim:
                                add_trace(("ef", ri, gi, a),
                                          f"ef/{rel['param']}/{g.state_names[a]}",
                                          TensorType(f32, [B, M]))
                    rel_plan.append(("dense", ri, gi, pidx, cols))
                elif rel["kind"] == "element-wise":
                    pshape, sshape = _shape(g.param_args[pidx]), _shape(st)
                    if pshape == sshape[len(sshape) - len(pshape):]:
                        # a per-neuron value: one exact trace per neuron, all its uses at once
                        if (pidx, gi) not in per_neuron:
                            per_neuron.add((pidx, gi))
                            for a in prim:
                                add_trace(("ep", pidx, gi, a),
                                          f"ep/{rel['param']}/{g.state_names[a]}", st)
                            rel_plan.append(("ew", ri, gi, pidx, None))
                    else:
                        # e.g. an LSTM's fused gate bias [4H]: one trace per element of the
                        # relation's operand, which feeds exactly one neuron
                        u = rel["_operand"]
                        cols = _columns(g, rel, prim, u, group_labels(gi))
                        for a in prim:
                            name = f"ep/{rel['param']}/{g.state_names[a]}"
                            if name in [t[1] for t in traces]:  # a second use of the parameter
                                name += f"/{ri}"
                            add_trace(("epr", ri, gi, a), name, u.type)
                        rel_plan.append(("ewr", ri, gi, pidx, cols))
                elif rel["kind"] == "conv":
                    y, x = rop.results[0], rop.operands[0]
                    cp = _conv_relation(g, rel, prim, group_labels(gi))
                    if self.algorithm == "d-rtrl":
                        J = _shape(x)[cp.lhs_spec[1]] * math.prod(
                            _shape(rop.operands[1])[d] for d in cp.rhs_spec[2:])
                        for a in prim:
                            add_trace(("eps", ri, gi, a), f"eps/{rel['param']}/{g.state_names[a]}",
                                      TensorType(f32, [math.prod(_shape(y)[1:]), _shape(y)[0], J]))
                    else:
                        if ("ex", ri) not in [t[0] for t in traces]:
                            add_trace(("ex", ri), f"ex/{rel['param']}", x.type)
                        for a in prim:
                            add_trace(("ef", ri, gi, a), f"ef/{rel['param']}/{g.state_names[a]}", y.type)
                    rel_plan.append(("conv", ri, gi, pidx, None))
                else:
                    raise op_error(rop, f"insert-eligibility-traces: {rel['kind']} relations "
                                        f"('{rel['param']}') are not supported yet")
        plan = rel_plan

        # ---- the new function: step and loss cloned in, then derivatives
        loss_roles = roles(loss.arg_attrs)
        target_t = loss.function_type.inputs.data[-1]
        in_types = ([a.type for a in g.param_args] + [a.type for a in g.state_args]
                    + [t for _, _, t in traces] + [TensorType(i32, []), g.args[-1].type,
                                                    target_t, TensorType(f32, [])])
        block = Block(arg_types=in_types)
        args = list(block.args)
        p_args, s_args = args[:n_p], args[n_p:n_p + n_s]
        tr_args = args[n_p + n_s:n_p + n_s + len(traces)]
        n_arg, x_arg, target_arg, mask_arg = args[-4:]
        vmap: dict = dict(zip(g.args, p_args + s_args + [x_arg]))
        op_map = {}
        for inner in list(step.body.block.ops)[:-1]:
            clone = inner.clone(value_mapper=vmap)
            block.add_op(clone)
            op_map[inner] = clone
            for old, new in zip(inner.results, clone.results):
                vmap[old] = new
        new_state = [vmap.get(v, v) for v in g.state_results]
        outputs = [vmap.get(v, v) for v in g.output_results]
        lmap = dict(zip(loss.body.block.args, outputs + [target_arg]))
        for inner in list(loss.body.block.ops)[:-1]:
            clone = inner.clone(value_mapper=lmap)
            block.add_op(clone)
            for old, new in zip(inner.results, clone.results):
                lmap[old] = new
        loss_value = lmap.get(loss.body.block.last_op.operands[0])
        masked = shlo.MultiplyOp.create(operands=[loss_value, mask_arg], result_types=[loss_value.type])
        masked.location = step.location
        block.add_op(masked)
        masked_loss = masked.results[0]
        block.add_op(func.ReturnOp(*new_state, *outputs, masked_loss))
        fn = func.FuncOp("learn_step", FunctionType.from_lists(in_types, []), Region(block),
                         visibility="private")
        fn.location = step.location
        op.body.block.add_op(fn)

        em = Emitter(block)
        em.loc = step.location
        cut = {op_map[o] for o in step.body.block.ops if g.is_cut(o)}
        trace_arg = {key: a for (key, _, _), a in zip(traces, tr_args)}
        new_trace: dict = {}
        one_loss = em.full(1.0, masked_loss)

        def ones(v):
            return em.full(1.0, v)

        D: dict = {}
        delta: dict = {}
        delta_prev: dict = {}
        for gi, prim in enumerate(prim_of):
            wanted = [new_state[a] for a in prim]
            ders = [d for d in derived if set(derived[d]) & set(prim)]
            for c in prim:
                seeds = {s_args[c]: ones(s_args[c])}
                for d in ders:
                    if ("jac", d, c) in trace_arg:
                        seeds[s_args[d]] = trace_arg[("jac", d, c)]
                tans = jvp(fn, seeds, cut, wanted=wanted, emitter=em)
                for a in prim:
                    D[(a, c)] = tans.get(new_state[a])
            # δ goes through every same-step path to the loss (later layers, readout),
            # but not from one of the group's new states through another of them.
            cots = vjp(fn, {masked_loss: one_loss}, set(wanted), wrt=wanted, emitter=em)
            for a in prim:
                delta[a] = cots.get(new_state[a])
            # δ⁻ goes from the old states to the loss along the paths that avoid the
            # group's new states; a derived old state passes its part to its sources
            # through the carried Jacobian of its recomputation.
            olds = [s_args[c] for c in prim] + [s_args[d] for d in ders]
            cots = vjp(fn, {masked_loss: one_loss}, set(wanted), wrt=olds, emitter=em)
            for c in prim:
                delta_prev[c] = em.sum_all(
                    [cots.get(s_args[c])]
                    + [em.mul(cots.get(s_args[d]), trace_arg[("jac", d, c)])
                       for d in ders if ("jac", d, c) in trace_arg])
            for d in ders:
                for c in derived[d]:
                    t = jvp(fn, {new_state[c]: ones(new_state[c])}, cut, wanted=[new_state[d]],
                            emitter=em).get(new_state[d])
                    new_trace[("jac", d, c)] = em.val(t, new_state[d])

        # The direct same-step gradient of each parameter, with the new states of the
        # groups it feeds held (one reverse pass per distinct set of groups).
        fed: dict = {}
        for rel in relations:
            fed.setdefault(g.param_names.index(rel["param"]), set()).update(rel["groups"])
        held_sets = {pidx: frozenset(fed.get(pidx, ())) for pidx in range(n_p)}
        grads = [None] * n_p
        for held in sorted(set(held_sets.values()), key=sorted):
            cut_at = {new_state[a] for gi in held for a in prim_of[gi]}
            which = [pidx for pidx in range(n_p) if held_sets[pidx] == held]
            direct = vjp(fn, {masked_loss: one_loss}, cut_at, wrt=[p_args[k] for k in which],
                         emitter=em)
            for pidx in which:
                grads[pidx] = direct.get(p_args[pidx])

        alpha = float(self.decay)
        corr = corr_prev = None
        if self.algorithm == "es-d-rtrl" and alpha > 0.0:
            nf = em.convert(n_arg, TensorType(f32, []))
            n1 = em.add(nf, em.full(1.0, nf))
            power = em.binary(shlo.PowerOp, em.full(alpha, nf), n1)
            corr = em.div(em.full(1.0, nf), em.sub(em.full(1.0, nf), power))
            # the previous step's correction 1/(1-α^n); at n = 0 the previous traces
            # are zero (a reset zeroes them), so max(n, 1) keeps the product finite
            n_prev = em.binary(shlo.MaximumOp, nf, em.full(1.0, nf))
            power_prev = em.binary(shlo.PowerOp, em.full(alpha, nf), n_prev)
            corr_prev = em.div(em.full(1.0, nf), em.sub(em.full(1.0, nf), power_prev))

        def update(key, make, source, D_rel, prim):
            """The new trace ``key`` (its last part is the state a): the op ``make``
            builds from the carried part and this step's source, or zeros when
            nothing flows into it."""
            *base, a = key
            jac, prev = _carried(D_rel, prim, a, lambda c: trace_arg[(*base, c)])
            old = trace_arg[key]
            acc = (em.insert(make(jac, prev, source, old.type)) if jac or source is not None
                   else em.val(None, old))
            new_trace[key] = acc
            return acc

        def input_trace(ri, x):
            """ES-D-RTRL's εx of relation ri: one per relation, whatever groups it feeds."""
            if ("ex", ri) not in new_trace:
                new_trace[("ex", ri)] = em.insert(InputTraceOp(trace_arg[("ex", ri)], x, alpha))
            return new_trace[("ex", ri)]

        def neuron_traces(ri, gi, Df, D_rel, prim):
            """ES-D-RTRL's εf of relation ri, one per state of group gi."""
            return {a: update(("ef", ri, gi, a),
                              lambda j, pr, src, t: NeuronTraceOp(j, pr, src, t, alpha, 1.0 - alpha),
                              Df[a], D_rel, prim) for a in prim}

        def sources(seed, cols, prim):
            """∂(new state a)/∂(seed) within the step, mixing cut, laid out as ``seed``:
            forward mode when seed is laid out as the neurons, else one reverse pass per
            state (each element of seed feeds one neuron, so the column sum is exact)."""
            if cols is None:
                tans = jvp(fn, {seed: ones(seed)}, cut, wanted=[new_state[a] for a in prim],
                           emitter=em)
                return {a: tans.get(new_state[a]) for a in prim}
            return {a: vjp(fn, {new_state[a]: ones(new_state[a])}, cut, wrt=[seed],
                           emitter=em).get(seed) for a in prim}

        for kind, ri, gi, pidx, cols in plan:
            prim = prim_of[gi]
            rel = relations[ri]
            rop = op_map[rel["_op"]]
            p = p_args[pidx]
            em.loc = rop.location
            # D and δ of the group, laid out as the relation's output (columns -> neurons)
            D_rel = {k: _spread(em, v, cols) for k, v in D.items() if k[0] in prim}
            d_rel = {a: _spread(em, delta[a], cols) for a in prim}
            dm_rel = {c: _spread(em, delta_prev[c], cols) for c in prim}
            ex = ex_prev = None
            if kind == "dense":
                x, y, w = rop.operands[0], rop.results[0], rop.operands[1]
                # the weight as [I, M]: W itself, or Wᵀ for x·Wᵀ written as one dot_general
                w_t = w.type if dot_dims(rop)[3] == [0] else TensorType(f32, _shape(w)[::-1])
                owner = ef_owner.get((ri, gi), ri)
                Df = sources(y, cols, prim) if owner == ri else None
                em.loc = rop.location  # the trace ops point at the relation's line
                if self.algorithm == "d-rtrl":
                    new = {a: update(("eps", ri, gi, a),
                                     lambda j, pr, src, t: ParamTraceOp(j, pr, x, src, t),
                                     Df[a], D_rel, prim) for a in prim}
                    prev = {c: trace_arg[("eps", ri, gi, c)] for c in prim}
                    grad_of = lambda e_x, k, ds, es: TraceGradOp(ds, es, w_t)  # noqa: E731
                else:
                    ex, ex_prev = input_trace(ri, x), trace_arg[("ex", ri)]
                    new = ({a: new_trace[("ef", owner, gi, a)] for a in prim} if owner != ri
                           else neuron_traces(ri, gi, Df, D_rel, prim))  # else shared
                    prev = {c: trace_arg[("ef", owner, gi, c)] for c in prim}
                    grad_of = lambda e_x, k, ds, es: FactoredGradOp(e_x, ds, es, k, w_t)  # noqa: E731
            elif kind == "conv":
                x, y, w = rop.operands[0], rop.results[0], rop.operands[1]
                cp = conv_params(rop)
                Df = sources(y, None, prim)
                em.loc = rop.location
                if self.algorithm == "d-rtrl":
                    B, N = _shape(y)[0], math.prod(_shape(y)[1:])
                    flat = {k: em.reshape(v, [B, N]) if v is not None else None
                            for k, v in D_rel.items()}
                    patches = _patches(em, x, w, y, cp)
                    new = {a: update(("eps", ri, gi, a),
                                     lambda j, pr, src, t: ParamTraceOp(j, pr, patches, src, t),
                                     em.reshape(Df[a], [B, N]) if Df[a] is not None else None,
                                     flat, prim) for a in prim}
                    d_rel = {a: em.reshape(v, [B, N]) if v is not None else None
                             for a, v in d_rel.items()}
                    dm_rel = {c: em.reshape(v, [B, N]) if v is not None else None
                              for c, v in dm_rel.items()}
                    prev = {c: trace_arg[("eps", ri, gi, c)] for c in prim}
                    J = _shape(patches)[2]
                    grad_of = lambda e_x, k, ds, es: TraceGradOp(ds, es, TensorType(f32, [J, N]))  # noqa: E731
                else:
                    ex, ex_prev = input_trace(ri, x), trace_arg[("ex", ri)]
                    new = neuron_traces(ri, gi, Df, D_rel, prim)
                    prev = {c: trace_arg[("ef", ri, gi, c)] for c in prim}
                    grad_of = None
            else:
                seed = p if kind == "ew" else vmap.get(rel["_operand"], rel["_operand"])
                src = sources(seed, cols, prim)
                em.loc = rop.location
                trace_key = ("ep", pidx) if kind == "ew" else ("epr", ri)
                new = {a: update((*trace_key, gi, a),
                                 lambda j, pr, s_, t: NeuronTraceOp(j, pr, s_, t, 1.0, 1.0),
                                 src[a], D_rel, prim) for a in prim}
                prev = {c: trace_arg[(*trace_key, gi, c)] for c in prim}
                grad_of = lambda e_x, k, ds, es: TraceGradOp(ds, es, seed.type)  # noqa: E731

            def contract(pairs, e_x, k):
                """Σ over the group's states of δ-like signals times traces, as a
                gradient of the relation (before layout ops back to the parameter)."""
                if not pairs:
                    return None
                if kind == "conv" and self.algorithm == "es-d-rtrl":
                    # εx and Σ δ εf in place of the input and the output cotangent: the
                    # convolution's weight gradient
                    sig = em.sum_all([em.mul(d, e) for d, e in pairs])
                    if k is not None:
                        sig = em.mul(sig, em.broadcast_in_dim(k, _shape(sig), []))
                    return conv_transpose_rhs(em, sig, e_x, w.type, cp)
                G = em.insert(grad_of(e_x, k, [d for d, _ in pairs], [e for _, e in pairs]))
                return _kernel_of(em, G, x, w, y, cp) if kind == "conv" else G

            # δ with this step's traces, δ⁻ with the previous step's
            G = em.add(contract([(d_rel[a], new[a]) for a in prim if d_rel[a] is not None],
                                ex, corr),
                       contract([(dm_rel[c], prev[c]) for c in prim if dm_rel[c] is not None],
                                ex_prev, corr_prev))
            if G is not None and kind == "dense" and w_t is not w.type:
                G = em.transpose(G, [1, 0])
            if G is not None and kind != "ew":
                # back to the parameter through layout ops and transforms (abs(W), W * mask)
                operand = seed if kind == "ewr" else w
                if operand is not p:
                    G = vjp(fn, {operand: G}, wrt=[p], emitter=em).get(p)
            if G is not None:
                grads[pidx] = em.add(grads[pidx], G)

        grads = [em.val(gv, p) for gv, p in zip(grads, p_args)]
        traces_out = [em.val(new_trace.get(key), a) for (key, _, _), a in zip(traces, tr_args)]
        ret = block.last_op
        final = func.ReturnOp(*new_state, *traces_out, *grads, loss_value, *outputs)
        final.location = step.location
        block.insert_op_before(final, ret)
        ret.detach()
        ret.erase()
        remove_dead_code(block)
        # A trace no update reads is needed within its own step only, so it is not
        # carried: e.g. the trace of a spike z that reaches the next step only through
        # cut recurrent weights (lif2's z): half of D-RTRL's [H, B, I] traces there.
        unread = {k for k, a in enumerate(tr_args) if not list(a.uses)}
        if unread:
            first = len(new_state)
            kept = [v for k, v in enumerate(final.operands)
                    if not (first <= k < first + len(traces) and k - first in unread)]
            final = self._replace_return(final, kept)
            for k in sorted(unread, reverse=True):
                block.erase_arg(tr_args[k])
            first = n_p + n_s
            in_types = [t for k, t in enumerate(in_types)
                        if not (first <= k < first + len(traces) and k - first in unread)]
            traces = [t for k, t in enumerate(traces) if k not in unread]
            remove_dead_code(block)
        arg_roles = (roles(step.arg_attrs)[:n_p + n_s] + [("trace", n) for _, n, _ in traces]
                     + [("counter", "n"), ("input", "x"), ("target", loss_roles[-1][1]),
                        ("mask", "mask")])
        res_roles = (roles(step.res_attrs)[:n_s] + [("trace", n) for _, n, _ in traces]
                     + [("grad", n) for n in g.param_names] + [("loss", "loss")]
                     + roles(step.res_attrs)[n_s:])
        fn.function_type = FunctionType.from_lists(in_types, [v.type for v in final.operands])
        fn.arg_attrs = role_attrs(arg_roles)
        fn.res_attrs = role_attrs(res_roles)
        fn.attributes["tracec.learning"] = to_attr({"algorithm": self.algorithm, "decay": alpha})
