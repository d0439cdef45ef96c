"""Layouts of the learning rules: where a relation's output columns feed its neurons,
embedding lookups as one-hot inputs, convolution patches and kernels.

A relation's traces live in the layout of its output ``y [B, M]``; ``columns`` says which
neuron each column feeds (None: ``y`` is laid out as the neurons) and ``spread`` lays a
per-neuron value out as ``y``. Used by the rule modules and the learning step builder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, TensorType, f32

from tracec.dialects import stablehlo as shlo
from tracec.passes.analysis.dataflow import SEVERAL, UNREACHED, StepGraph, operand_index
from tracec.passes.analysis.index_maps import gather_sources
from tracec.passes.ir.attributes import ConvParams, conv_params
from tracec.passes.ir.builder import Builder
from tracec.passes.ir.module import op_error


def shape(v) -> list[int]:
    t = v if isinstance(v, TensorType) else v.type
    return list(t.get_shape())


def columns(g: StepGraph, rel, prim: list[int], y, labels: dict, key=None) -> list[int] | None:
    """Which neuron of its batch row each column of the relation's output ``y`` [B, M]
    feeds (-1: none of this group's); None when ``y`` is laid out as the neurons.
    ``labels``: ``neuron_labels`` of the group."""
    rop, what = rel.op, f"the {rel.kind} relation of '{rel.param}'"
    states = [g.state_results[a] for a in prim]
    sshape = shape(states[0])
    same = all(shape(s) == sshape for s in states)
    found = labels.get(y if key is None else key)
    neuron = np.full(shape(y), UNREACHED, np.int64) if found is None else found
    if same and shape(y) == sshape and (neuron == np.arange(neuron.size).reshape(sshape)).all():
        return None
    if not same or len(sshape) != 2 or len(shape(y)) != 2 or shape(y)[0] != sshape[0]:
        raise op_error(rop, f"insert-eligibility-traces: {what} has output {shape(y)} and "
                            f"neurons {[shape(s) for s in states]}; the online rules need "
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


def spread(em: Builder, v, cols: list[int] | None):
    """A per-neuron value [B, H] laid out as a relation's output [B, M]: column m holds
    neuron ``cols[m]`` (zero where -1). An LSTM's fused gates are four copies side by
    side; other layouts are slices of ``v`` and zeros, concatenated."""
    if v is None or cols is None:
        return v
    B, H = shape(v)
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


def row_lookup(op, rel) -> int:
    """The number of rows V of a gathered relation that looks up one row of a [V, H]
    parameter per batch element (``E[idx]``, ``jnp.take(E, idx, axis=0)``); an error
    for any other gather."""
    fields = shlo.struct_fields(op.dimension_numbers) if isinstance(op, shlo.GatherOp) else {}
    operand, indices, y = shape(op.operands[0]), shape(op.operands[1]), shape(op.results[0])
    ok = (isinstance(op, shlo.GatherOp) and rel.operand is op.operands[0]
          and len(operand) == 2 and len(y) == 2 and fields.get("offset_dims") == [1]
          and fields.get("collapsed_slice_dims") == [0] and fields.get("start_index_map") == [0]
          and not fields.get("operand_batching_dims")
          and fields.get("index_vector_dim") == len(indices) - (indices[-1:] == [1])
          and indices[:1] == y[:1] and (len(indices) == 1 or indices == [y[0], 1]))
    if not ok:
        raise op_error(op, f"insert-eligibility-traces: the gathered relation of "
                           f"'{rel.param}' must look up one row of a [V, H] parameter per "
                           "batch element (an embedding E[idx] with idx [B])",
                       hint="index the parameter's first axis with one index per sample")
    return operand[0]


def one_hot(em: Builder, indices, rows: int):
    """``[B, V]`` float32 one-hot rows of ``indices`` ([B] or [B, 1]), clamped into
    [0, V) as the gather clamps them: the input of E[idx] seen as one_hot(idx) @ E."""
    B = shape(indices)[0]
    et = indices.type.element_type
    idx = em.reshape(indices, [B])
    lo = em.one(shlo.ConstantOp, [], TensorType(et, [B]), {"value": DenseIntOrFPElementsAttr.from_list(
        TensorType(et, [B]), [0] * B)})
    hi = em.one(shlo.ConstantOp, [], TensorType(et, [B]), {"value": DenseIntOrFPElementsAttr.from_list(
        TensorType(et, [B]), [rows - 1] * B)})
    idx = em.binary(shlo.MinimumOp, em.binary(shlo.MaximumOp, idx, lo), hi)
    cols = em.one(shlo.ConstantOp, [], TensorType(et, [B, rows]), {
        "value": DenseIntOrFPElementsAttr.from_list(TensorType(et, [B, rows]),
                                                    list(range(rows)) * B)})
    hit = em.compare(em.broadcast_in_dim(idx, [B, rows], [0]), cols, "EQ")
    return em.convert(hit, TensorType(f32, [B, rows]))


def entry(y):
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


def conv_relation(g: StepGraph, rel, prim: list[int], labels: dict) -> ConvParams:
    """The convolution of a relation, checked: kernel = the parameter, batch first,
    output laid out as the neurons, no feature or batch groups."""
    rop, what = rel.op, f"the convolution relation of '{rel.param}'"
    if rel.param_side != "rhs":
        raise op_error(rop, f"insert-eligibility-traces: {what} must take the parameter as "
                            "its kernel (the right-hand operand)")
    cp = conv_params(rop)
    if cp.lhs_spec[0] != 0 or cp.out_spec[0] != 0 or cp.feature_group_count != 1 \
            or cp.batch_group_count != 1:
        raise op_error(rop, f"insert-eligibility-traces: {what} must have the batch as its "
                            "first dimension and no feature or batch groups")
    if columns(g, rel, prim, rop.results[0], labels) is not None:
        raise op_error(rop, f"insert-eligibility-traces: the output of {what} must be laid "
                            "out as its neurons")
    return cp


def patches(em: Builder, x, w, y, cp: ConvParams):
    """D-RTRL's input of a convolution, per neuron and laid out like its trace: ``[N, B, J]``
    holding at [n, b, j] the element of x that kernel entry j = (input channel, offset)
    multiplies at neuron n's position. A convolution of x with a one-hot kernel of J
    output channels."""
    xs, ws, ys = shape(x), shape(w), shape(y)
    cin, ksp = xs[cp.lhs_spec[1]], [ws[d] for d in cp.rhs_spec[2:]]
    K = math.prod(ksp)
    canon = np.zeros([cin * K, cin] + ksp, np.float32)  # (out, in, spatial...)
    for c in range(cin):
        for k in range(K):
            canon[(c * K + k, c) + np.unravel_index(k, ksp)] = 1.0
    kernel = canon.transpose(inverse(cp.rhs_spec))
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


def kernel_of(em: Builder, G, x, w, y, cp: ConvParams):
    """A gradient per (kernel entry j, neuron) [J, N] summed over positions and laid
    out as the kernel."""
    ws, ys = shape(w), shape(y)
    ksp = [ws[d] for d in cp.rhs_spec[2:]]
    cin, cout = shape(x)[cp.lhs_spec[1]], ys[cp.out_spec[1]]
    f = cp.out_spec[1]
    spatial = [d for d in range(1, len(ys)) if d != f]
    per_channel = em.reduce_sum(em.reshape(G, [shape(G)[0]] + ys[1:]),
                                spatial)                              # [J, Cout]
    split = em.reshape(per_channel, [cin] + ksp + [cout])
    canon = em.transpose(split, [len(ksp) + 1, 0] + list(range(1, len(ksp) + 1)))
    return em.transpose(canon, inverse(cp.rhs_spec))


def inverse(spec) -> list[int]:
    """The permutation that puts canonical axis c (out/batch, in/feature, spatial...)
    at position ``spec[c]``."""
    inv = [0] * len(spec)
    for c, d in enumerate(spec):
        inv[d] = c
    return inv


def check_dense(op, rel) -> None:
    """A dense relation the rules take: ``y = x @ W`` (or ``x @ Wᵀ`` in one dot_general)
    with ``x [B, I]``, ``y [B, M]`` and the (transformed) parameter on the right."""
    from tracec.passes.ir.attributes import dot_dims

    y = op.results[0]
    if rel.param_side != "rhs" or len(shape(op.operands[0])) != 2 \
            or len(shape(y)) != 2 \
            or dot_dims(op) not in (([], [], [1], [0]), ([], [], [1], [1])):
        raise op_error(op, f"insert-eligibility-traces: the dense relation of "
                           f"'{rel.param}' must be y = x @ W with x [B, I] and y [B, M]",
                       hint="write the matmul as x @ W with the batch first")


# -- sparse relations: y = x[:, pre] * w, each column c summed into neuron post[c]


@dataclass(frozen=True)
class SparseLayout:
    """A sparse relation's connection list as the rules use it: ``x [B, I]`` the values
    it reads (a value of ``@step``), ``pre[c]`` the column of ``x`` connection c reads,
    ``batch_axis`` the batch axis of the relation's output ([B, nnz]: 0; a BCOO
    matmul's [nnz, B]: 1)."""

    x: object
    pre: tuple
    batch_axis: int


def sparse_layout(g: StepGraph, rel) -> SparseLayout:
    """The gather's index map composed with the layout ops around it, checked: every
    sample reads the same connection list from its own row of ``x``."""
    from tracec.passes.analysis.relations import sparse_input

    k, gather, chain = g.sparse_relation(rel.op)
    x, before = sparse_input(g, rel.op)
    y = rel.op.results[0]
    what = f"the sparse relation of '{rel.param}'"
    if len(shape(y)) != 2 or len(shape(x)) != 2:
        raise op_error(rel.op, f"insert-eligibility-traces: {what} has input {shape(x)} and "
                               f"output {shape(y)}; the online rules need x [B, I] and one "
                               "value per connection and sample",
                       hint="write the connections as x[:, pre] * w with the batch first")
    index = np.arange(math.prod(shape(y)), dtype=np.int64).reshape(shape(y))
    for op in reversed(chain):  # element of y -> element of the gather's result
        index = operand_index(g, op, 0).reshape(-1)[index]
    index = gather_sources(gather, g.static(gather.operands[1])).reshape(-1)[index]
    for op in reversed(before):  # element of the gather's operand -> element of x
        index = operand_index(g, op, 0).reshape(-1)[index]
    B, I = shape(x)
    rows, cols = index // I, index % I
    for axis in (0, 1):
        if shape(y)[axis] != B:
            continue
        batch = np.arange(B).reshape([B, 1] if axis == 0 else [1, B])
        per_sample = cols if axis == 0 else cols.T
        if (rows == batch).all() and (per_sample == per_sample[0]).all():
            return SparseLayout(x, tuple(int(c) for c in per_sample[0]), axis)
    raise op_error(rel.op, f"insert-eligibility-traces: {what} reads other samples' inputs "
                           "or a different connection list per sample",
                   hint="index the neurons axis only, with one connection list for all")


def sparse_columns(g: StepGraph, rel, prim: list[int], labels: dict, batch_axis: int) -> list[int]:
    """The neuron each connection feeds (``columns`` of the relation's output seen
    batch first)."""
    y = rel.op.results[0]
    if batch_axis == 0:
        cols = columns(g, rel, prim, y, labels)
        return list(range(shape(y)[1])) if cols is None else cols
    flipped = {y: labels[y].T} if y in labels else {}
    cols = columns(g, rel, prim, _Transposed(y), flipped, key=y)
    return list(range(shape(y)[0])) if cols is None else cols


class _Transposed:
    """A 2-D value seen transposed, for ``columns``."""

    def __init__(self, v):
        self.type = TensorType(v.type.element_type, shape(v)[::-1])


def to_batch_first(em: Builder, v, batch_axis: int):
    return v if v is None or batch_axis == 0 else em.transpose(v, [1, 0])


def to_operand(em: Builder, G, operand, batch_axis: int):
    """A gradient per connection and sample, batch first, as the relation's parameter
    operand: summed over the batch where the operand has none (a BCOO matmul's data),
    else laid out as the relation's output."""
    if len(shape(operand)) == 1:
        return em.reduce_sum(G, [0])
    return to_batch_first(em, G, batch_axis)


def column_gather(em: Builder, v, cols) -> object:
    """``v [B, N]`` laid out as ``[B, M]``: column m holds ``v[:, cols[m]]`` (zero where
    ``cols[m]`` is -1), one gather however the columns are spread."""
    if v is None:
        return None
    B = shape(v)[0]
    idx = np.asarray(cols, np.int32)
    if idx.tolist() == list(range(shape(v)[1])):
        return v
    indices = em.constant(np.maximum(idx, 0).reshape(-1, 1))
    out = em.gather(v, indices, {"offset_dims": [0], "collapsed_slice_dims": [1],
                                 "start_index_map": [1], "index_vector_dim": 1},
                    [B, 1], [B, len(cols)])
    if (idx < 0).any():
        keep = em.constant(np.broadcast_to((idx >= 0).astype(np.float32), [B, len(cols)]).copy())
        out = em.mul(out, em.convert(keep, out.type))
    return out


def first_connections(cols, B: int) -> np.ndarray:
    """``[B, nnz]`` float32: 1 at the first connection into each neuron, else 0. As a
    tangent of ``y`` it reaches each neuron with weight one (the columns of one neuron
    all have that neuron's ∂h/∂y)."""
    cols = np.asarray(cols)
    mask = np.zeros(len(cols), np.float32)
    _, first = np.unique(cols, return_index=True)
    mask[first[cols[first] >= 0]] = 1.0
    return np.broadcast_to(mask, [B, len(cols)]).copy()
