"""window-param-traces: a D-RTRL weight trace carried over K unrolled steps in one pass.

A time loop unrolled K times (``lower-scan-to-iree``) holds, per dense weight, a chain
of K ``tracec.param_trace`` ops, ``ε_k = D_k ⊙ ε_{k-1} + f_k ⊗ x_k`` (``D_k``, ``f_k``
``[B, H]`` per neuron and batch row, ``x_k [B, I]``), each read by ``tracec.trace_grad``
ops whose gradients are added into one accumulator. Computed as written, every step
reads and writes the trace ``[H, B, I]``, and IREE keeps each step's trace in memory for
its contraction. Because ``D`` is per neuron, the K steps compose in closed form from
the trace at the window's start ``ε_0``:

- ``ε_K = P ⊙ ε_0 + Σ_k R_k ⊙ f_k ⊗ x_k``, ``P = D_1 ⋯ D_K``, ``R_k = D_{k+1} ⋯ D_K``:
  K ``param_trace`` ops that only IREE's element-wise fusion sees, one pass over ε_0;
- ``Σ_j δ_j · ε_j = Σ_b A ε_0 + Σ_k Σ_b (f_k ⊙ S_k) x_k``, with ``Δ_j`` the sum of the
  signals read against ``ε_j`` (δ with this step's trace, δ⁻ with the previous one's),
  ``S_K = Δ_K``, ``S_k = Δ_k + D_{k+1} ⊙ S_{k+1}`` and ``A = Δ_0 + D_1 ⊙ S_1``: one
  ``trace_grad`` against ``ε_0`` and one product over the window's K·B rows.

So the trace is read and written once per window instead of once per step, with the
same multiply-adds per element. The window's gradients take the place of the K
per-step ones in the accumulator, which is exact only where nothing reads the
accumulator inside the window: the rewrite applies where every ``trace_grad`` of the
chain reaches one value through ``stablehlo.add`` ops alone, each used once, i.e. the
accumulator after the window is the sum of the accumulator before it, these gradients
and any others (a ``select`` on a predicate known false, as a quiet window's
``linalg.fill`` of ``false``, is folded first). A chain of one state (one ``jac``) with
an input ``[B, I]``, each trace used only by the next and by ``trace_grad`` ops of one
signal each, result ``[I, H]``; any other chain is left as it is.

Before: lower-scan-to-iree's loop, trace ops not yet lowered. After: the same, each such
chain and its gradients in the window form (the new ops at the old ones' location).
A gradient that reaches the sum through transposes (a weight used as ``x·Wᵀ``) counts
where all of the window's do so alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, UnitAttr
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass

from tracec.dialects import stablehlo as shlo
from tracec.dialects.tracec import ParamTraceOp, TraceGradOp
from tracec.passes.ir.attributes import ints
from tracec.passes.ir.builder import Builder
from tracec.passes.ir.module import op_name


def _shape(v) -> list[int]:
    return list(SSAValue.get(v).type.get_shape())


def _known_false(v: SSAValue) -> bool:
    """A boolean tensor that is ``false`` everywhere: a ``linalg.fill`` of an
    ``arith.constant false``, possibly broadcast."""
    op = v.owner
    if isinstance(op, shlo.BroadcastInDimOp):
        return _known_false(op.operand)
    if not isinstance(op, Operation) or op_name(op) != "linalg.fill" or not op.operands:
        return False
    c = op.operands[0].owner
    if not isinstance(c, Operation) or op_name(c) != "arith.constant":
        return False
    value = c.properties.get("value", c.attributes.get("value"))
    return isinstance(value, IntegerAttr) and value.value.data == 0


def _fold_false_selects(module: ModuleOp) -> None:
    for op in [o for o in module.walk() if isinstance(o, shlo.SelectOp)]:
        if _known_false(op.operands[0]):
            op.results[0].replace_all_uses_with(op.operands[2])
            op.detach()
            op.erase()


def _chains(block: Block) -> list[list[ParamTraceOp]]:
    """Maximal chains of one-state param_trace ops in ``block``, each the previous one's
    only param_trace user; two steps or more."""
    pts = [o for o in block.ops if isinstance(o, ParamTraceOp)]
    single = {o for o in pts if len(o.jac) == 1 and o.x is not None and len(_shape(o.x)) == 2}
    nxt = {}
    for o in single:
        users = [u.operation for u in o.res.uses if isinstance(u.operation, ParamTraceOp)]
        if len(users) == 1 and users[0] in single and users[0].prev[0] == o.res:
            nxt[o] = users[0]
    has_prev = set(nxt.values())
    chains = []
    for o in pts:
        if o in nxt and o not in has_prev:
            chain = [o]
            while chain[-1] in nxt:
                chain.append(nxt[chain[-1]])
            chains.append(chain)
    return chains


def _head(tg: TraceGradOp) -> tuple[list[Operation], tuple]:
    """The single-use transposes after a gradient (the parameter's layout, ``x·Wᵀ``):
    the ops from the trace_grad on, and their permutations."""
    ops, perms = [tg], []
    while True:
        uses = list(ops[-1].results[0].uses)
        if len(uses) != 1 or not isinstance(uses[0].operation, shlo.TransposeOp):
            return ops, tuple(perms)
        ops.append(uses[0].operation)
        perms.append(tuple(ints(uses[0].operation.permutation)))


def _sum_exit(tgs: list[TraceGradOp]) -> SSAValue | None:
    """The one value that the gradients of ``tgs`` reach through single-use adds (the
    accumulator after the window), each through the same transposes, or None where they
    reach anything else."""
    heads = [_head(tg) for tg in tgs]
    if len({perms for _, perms in heads}) != 1:
        return None
    starts = {ops[-1].results[0] for ops, _ in heads}
    exits, seen = set(), set()
    todo = list(starts)
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        uses = list(v.uses)
        if len(uses) == 1 and isinstance(uses[0].operation, shlo.AddOp) and \
                uses[0].operation.parent_block() is tgs[0].parent_block():
            todo.append(uses[0].operation.results[0])
        elif v in starts:
            return None  # a gradient read by something other than one add
        else:
            exits.add(v)
    return exits.pop() if len(exits) == 1 else None


def _window(chain: list[ParamTraceOp]) -> bool:
    """Rewrite one chain and its gradients; False (nothing changed) where it does not
    apply."""
    block = chain[0].parent_block()
    e0 = chain[0].prev[0]
    traces = [e0] + [pt.res for pt in chain]
    index = {t: j for j, t in enumerate(traces)}
    tgs: list[TraceGradOp] = []
    for j, t in enumerate(traces):
        for use in t.uses:
            user = use.operation
            if j < len(chain) and user is chain[j]:
                continue  # the next step's param_trace
            if isinstance(user, TraceGradOp) and user.parent_block() is block:
                if len(user.delta) != 1 or _shape(user.res) != [_shape(t)[2], _shape(t)[0]]:
                    return False
                tgs.append(user)
            elif 0 < j < len(chain):
                return False  # an intermediate trace read by something else
    tgs = list(dict.fromkeys(tgs))
    if not tgs or _sum_exit(tgs) is None:
        return False
    order = {op: i for i, op in enumerate(block.ops)}
    last = max(tgs, key=lambda tg: order[tg])
    K = len(chain)
    D = [pt.jac[0] for pt in chain]
    f = [pt.source for pt in chain]
    x = [pt.x for pt in chain]

    # the new trace, before the last param_trace
    em = Builder(block, before=chain[-1])
    em.loc = chain[-1].location
    R = [None] * K
    R[K - 1] = em.full(1.0, D[0])
    for k in range(K - 2, -1, -1):
        R[k] = em.mul(D[k + 1], R[k + 1])
    P = em.mul(D[0], R[0])
    trace = em.insert(ParamTraceOp([P], [e0], x[0], em.mul(R[0], f[0]),
                                   chain[-1].res.type)).results[0]
    ones = R[K - 1]
    for k in range(1, K):
        trace = em.insert(ParamTraceOp([ones], [trace], x[k], em.mul(R[k], f[k]),
                                       chain[-1].res.type)).results[0]

    # the window's gradient, before the last trace_grad
    em = Builder(block, before=last)
    em.loc = last.location
    delta = [None] * (K + 1)
    for tg in tgs:
        j = index[tg.trace[0]]
        delta[j] = em.add(delta[j], tg.delta[0])
    S = [None] * (K + 1)
    S[K] = delta[K]
    for k in range(K - 1, 0, -1):
        S[k] = em.add(delta[k], em.mul(D[k], S[k + 1]))  # D[k] is D_{k+1}
    A = em.add(delta[0], em.mul(D[0], S[1]))
    grad = None
    if A is not None:
        grad = em.insert(TraceGradOp([A], [e0], last.res.type)).results[0]
    rows = [(x[k - 1], em.mul(f[k - 1], S[k])) for k in range(1, K + 1) if S[k] is not None]
    rows = [(xk, c) for xk, c in rows if c is not None]
    if rows:
        small = em.dot_general(em.concatenate([xk for xk, _ in rows], 0),
                               em.concatenate([c for _, c in rows], 0), [], [], [0], [0])
        grad = em.add(grad, small)
    grad = em.val(grad, last.res)

    # the per-step gradients leave the accumulator's sum; the window's takes their place
    for tg in tgs:
        if tg is last:
            continue
        ops, _ = _head(tg)
        out = ops[-1].results[0]
        add = next(iter(out.uses)).operation
        other = add.operands[1] if add.operands[0] == out else add.operands[0]
        add.results[0].replace_all_uses_with(other)
        add.detach()
        add.erase()
        for o in reversed(ops):
            o.detach()
            o.erase()
    last.res.replace_all_uses_with(grad)
    last.detach()
    last.erase()
    chain[-1].res.replace_all_uses_with(trace)
    for pt in reversed(chain):
        if pt.res.uses:
            raise AssertionError("window-param-traces: a replaced trace is still read")
        pt.detach()
        pt.erase()
    return True


#: Set on the module (a unit attribute) where a chain was rewritten: the driver then
#: compiles it without IREE's aggressive fusion if that fails, not with its steps apart.
WINDOWED = "tracec.windowed_traces"


@dataclass(frozen=True)
class WindowParamTracesPass(ModulePass):
    """Option ``min-bytes`` (default 262144): traces smaller than this stay per step
    (they stay in cache, and their window would cost the module IREE's aggressive
    fusion for little)."""

    name = "window-param-traces"
    min_bytes: int = 262144

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        _fold_false_selects(op)
        blocks = {o.parent_block() for o in op.walk() if isinstance(o, ParamTraceOp)}
        done = False
        for block in blocks:
            for chain in _chains(block):
                if 4 * math.prod(_shape(chain[0].res)) >= self.min_bytes:
                    done = _window(chain) or done
        if done:
            op.attributes[WINDOWED] = UnitAttr()

