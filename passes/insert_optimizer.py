"""insert-optimizer: accumulate the learning step's gradients and apply SGD or Adam.

Builds ``@train_core`` around ``@learn_step``:

    train_core(params..., opt..., state..., traces..., accum..., n, k, x, target, mask)
        -> (params'..., opt'..., state'..., traces'..., accum'..., n', k', loss, outputs...)

``accum`` holds ``Σ_t m_t G_t`` since the last update, laid out as ``@learn_step``'s
gradient: as the parameter, or per batch row for a parameter named in
``tracec.learning``'s ``batch_rows``, summed over the batch where the optimizer reads it
(the cores then carry that mapping as ``tracec.accumulator_rows``, for the manifest).
``k`` counts steps since the last reset; after every ``update_every``-th of them the
optimizer runs and ``accum`` is cleared. ``n`` (steps since reset, for ES-D-RTRL's bias
correction) advances by one, up to 2^30 (``Builder.next_count``), where it stays.
SGD: ``θ ← θ − lr·accum``. Adam (β1 0.9, β2 0.999, ε 1e-8, bias-corrected): ``opt``
holds ``m``, ``v`` per parameter and the update count ``t``.

With ``skip_masked`` the pass also builds ``@advance_core``, the same step for a mask of
0: no gradient is computed, everything else (state, traces, counters, the optimizer on
the accumulated sum) advances as in ``@train_core`` with that mask. make-entry-points
turns it into ``advance_step`` and ``advance_sequence``, which the runtime calls for the
steps a mask leaves out.

With ``apart`` (a data-parallel artifact, ``--batch-shards``) the cores only
accumulate: ``k`` still counts and wraps at ``update_every``, but the parameters,
optimizer state and ``accum`` pass through unchanged but for the added gradient. The
pass then builds ``@update_core``, the optimizer on its own:

    update_core(params..., opt..., accum...) -> (params'..., opt'..., accum'...)

applied unconditionally to ``accum`` (a runtime hands it the reduced sum of its parts'
accumulators), which comes back zero.

Options: ``kind`` (``sgd`` | ``adam``), ``lr`` (> 0), ``update_every`` (K >= 1),
``skip_masked`` (bool, default false), ``apart`` (bool, default false).
Before: ``@learn_step`` exists (insert-eligibility-traces). After: ``@train_core``
(private) with roles, ``@advance_core`` with ``skip_masked`` and ``@update_core`` with
``apart``; ``@learn_step`` unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import FunctionType, ModuleOp, TensorType, f32, i32
from xdsl.ir import Block, Region
from xdsl.passes import ModulePass

from tracec.diagnostics import TracecError
from tracec.dialects import stablehlo as shlo
from tracec.options import CompileOptions
from tracec.passes.autodiff.engine import remove_dead_code
from tracec.passes.ir.builder import Builder, clone_block_ops
from tracec.passes.ir.module import from_attr, get_function, role_attrs, roles, to_attr

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
#: The most elements an iota of ``@advance_core`` may have to be written as a constant.
IOTA_CONSTANT_LIMIT = 4096


def _iotas_as_constants(block: Block) -> None:
    """Each small ``stablehlo.iota`` of ``block`` written as the constant it equals.
    Without its derivative a loss's one-hot (``iota == label``) is left to IREE 3.13's
    aggressive fusion alone, which moves the iota, shared by the unrolled steps, into
    the last step's kernel, where the earlier steps cannot reach it ("operand does not
    dominate this use"); a constant is not moved."""
    for op in list(block.ops):
        if not isinstance(op, shlo.IotaOp):
            continue
        t = op.results[0].type
        shape = t.get_shape()
        if not shape or any(d < 0 for d in shape) or math.prod(shape) > IOTA_CONSTANT_LIMIT:
            continue
        dim = op.properties["iota_dimension"].value.data
        values = np.broadcast_to(np.arange(shape[dim]).reshape(
            [-1 if i == dim else 1 for i in range(len(shape))]), shape)
        const = Builder(block, before=op, loc=op.location).constant(values, t)
        op.results[0].replace_all_uses_with(const)
        block.erase_op(op)


def _batch_sum(b: Builder, acc, perm):
    """A gradient accumulated per batch row (``[M, B, I]``) as its parameter: summed over
    the batch, then permuted (``perm``); with ``perm`` None, ``acc`` itself."""
    if perm is None:
        return acc
    total = b.reduce_sum(acc, [1])
    return total if list(perm) == [0, 1] else b.transpose(total, list(perm))


@dataclass(frozen=True)
class InsertOptimizerPass(ModulePass):
    name = "insert-optimizer"

    kind: str = CompileOptions.optimizer
    lr: float = CompileOptions.lr
    update_every: int = CompileOptions.update_every
    skip_masked: bool = CompileOptions.skip_masked_steps
    apart: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.kind not in ("sgd", "adam"):
            raise TracecError(f"insert-optimizer: unknown optimizer '{self.kind}'", hint="use sgd or adam")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise TracecError(f"insert-optimizer: lr must be a positive number, got {self.lr}")
        if self.update_every < 1:
            raise TracecError(f"insert-optimizer: update_every must be >= 1, got {self.update_every}")
        learn = get_function(op, "learn_step", self.name)
        lroles = roles(learn.arg_attrs)
        ltypes = list(learn.function_type.inputs.data)
        params = [(n, t) for (r, n), t in zip(lroles, ltypes) if r == "param"]
        n_p = len(params)
        rest_roles = lroles[n_p:]
        rest_types = ltypes[n_p:]
        opt = []
        if self.kind == "adam":
            opt = ([(f"m/{n}", t) for n, t in params] + [(f"v/{n}", t) for n, t in params]
                   + [("t", TensorType(f32, []))])
        # an accumulator is laid out as its gradient: as the parameter, or per batch row
        grad_types = [t for (r, _), t in zip(roles(learn.res_attrs), learn.function_type.outputs.data)
                      if r == "grad"]
        accum = [(n, t) for (n, _), t in zip(params, grad_types)]
        learning = (from_attr(learn.attributes["tracec.learning"])
                    if "tracec.learning" in learn.attributes else {})
        rows = learning.get("batch_rows", {})
        row_perms = [rows.get(n) for n, _ in params]
        # learn_step args: params, state..., traces..., n, x, target, mask
        n_before_counter = rest_roles.index(("counter", "n"))
        layout = (params, opt, accum, rest_roles[:n_before_counter], rest_types[:n_before_counter],
                  rest_roles[n_before_counter + 1:], rest_types[n_before_counter + 1:])
        cores = [self._core(learn, "train_core", layout, row_perms, advance=False)]
        if self.skip_masked:
            cores.append(self._core(learn, "advance_core", layout, row_perms, advance=True))
        if self.apart:
            cores.append(self._update_core(learn, params, opt, accum, row_perms))
        for fn in cores:
            if rows:
                fn.attributes["tracec.accumulator_rows"] = to_attr(rows)
            op.body.block.add_op(fn)

    def _update_core(self, learn: func.FuncOp, params: list, opt: list, accum: list,
                     rows: list) -> func.FuncOp:
        """``@update_core``: the optimizer applied to ``accum``, unconditionally."""
        types = [t for _, t in params] + [t for _, t in opt] + [t for _, t in accum]
        block = Block(arg_types=types)
        a = list(block.args)
        n_p, n_o = len(params), len(opt)
        p_args, o_args, acc_args = a[:n_p], a[n_p:n_p + n_o], a[n_p + n_o:]
        em = Builder(block, loc=learn.location)
        new_params, new_opt = [], list(o_args)
        sums = [_batch_sum(em, acc, perm) for acc, perm in zip(acc_args, rows)]
        if self.kind == "sgd":
            new_params = [self._step(em, p, acc) for p, acc in zip(p_args, sums)]
        else:
            bc1, bc2 = self._bias_corrections(em, o_args[-1])
            new_opt[-1] = em.add(o_args[-1], em.full(1.0, o_args[-1]))
            for i, (p, acc) in enumerate(zip(p_args, sums)):
                m1 = self._first_moment(em, o_args[i], acc)
                v1 = self._second_moment(em, o_args[n_p + i], acc)
                new_params.append(self._step(em, p, acc, m1, v1, bc1, bc2))
                new_opt[i], new_opt[n_p + i] = m1, v1
        new_acc = [em.zeros(acc) for acc in acc_args]
        final = em.insert(func.ReturnOp(*new_params, *new_opt, *new_acc))
        names = ([("param", n) for n, _ in params] + [("opt", n) for n, _ in opt]
                 + [("accum", n) for n, _ in accum])
        fn = func.FuncOp("update_core",
                         FunctionType.from_lists(types, [v.type for v in final.operands]),
                         Region(block), visibility="private", arg_attrs=role_attrs(names),
                         res_attrs=role_attrs(names))
        fn.location = learn.location
        return fn

    def _core(self, learn: func.FuncOp, name: str, layout: tuple, rows: list,
              advance: bool) -> func.FuncOp:
        """``@train_core``, or with ``advance`` ``@advance_core``: the same step with the
        mask 0 and no gradient, so that nothing that only feeds the gradient (the loss's
        derivative, the learning signals, the products with the traces) is left to run.
        State, traces, counters and the optimizer advance exactly as ``train_core``'s do
        with a mask of 0 (its gradient is then 0)."""
        params, opt, accum, carried_roles, carried_types, tail_roles, tail_types = layout
        rroles = roles(learn.res_attrs)
        n_p = len(params)
        scalar_i = TensorType(i32, [])
        in_types = ([t for _, t in params] + [t for _, t in opt] + carried_types
                    + [t for _, t in accum] + [scalar_i, scalar_i] + tail_types)
        block = Block(arg_types=in_types)
        a = list(block.args)
        p_args = a[:n_p]
        o_args = a[n_p:n_p + len(opt)]
        c_args = a[n_p + len(opt):n_p + len(opt) + len(carried_types)]
        k0 = n_p + len(opt) + len(carried_types)
        acc_args = a[k0:k0 + n_p]
        n_arg, k_arg = a[k0 + n_p], a[k0 + n_p + 1]
        tail = a[k0 + n_p + 2:]
        b = Builder(block, loc=learn.location)
        if advance:  # x, target and a mask of 0
            tail = tail[:-1] + [b.zeros(tail[-1])]
        res = clone_block_ops(learn.body.block, b, p_args + c_args + [n_arg] + tail)
        n_carried_out = len(carried_types)
        new_carried = res[:n_carried_out]
        grads = res[n_carried_out:n_carried_out + n_p]
        if advance:
            grads = [b.zeros(g) for g in grads]
        loss_and_outputs = res[n_carried_out + n_p:]

        em = Builder(block, loc=learn.location)
        one_i = em.i32(1)
        k_next = em.one(shlo.AddOp, [k_arg, one_i], scalar_i)
        n_next = em.next_count(n_arg)
        due = em.compare(k_next, em.i32(self.update_every), "GE")
        k_out = em.select(due, em.i32(0), k_next)
        if self.apart:  # accumulate only; update_core applies the optimizer
            new_params, new_opt = p_args, o_args
            new_acc = acc_args if advance else [em.add(acc, g) for acc, g in zip(acc_args, grads)]
        elif advance and self.kind == "sgd" and self.update_every == 1:
            # Updated after every step, the accumulator is 0 when a step starts (reset
            # makes it 0, every step leaves it 0): SGD on a zero gradient changes nothing.
            new_params, new_opt, new_acc = p_args, o_args, acc_args
        else:
            new_params, new_opt, new_acc = self._update(em, due, p_args, o_args, acc_args, grads,
                                                         rows)
        final = em.insert(func.ReturnOp(*new_params, *new_opt, *new_carried, *new_acc, n_next,
                                        k_out, *loss_and_outputs))
        arg_roles = ([("param", n) for n, _ in params] + [("opt", n) for n, _ in opt]
                     + carried_roles + [("accum", n) for n, _ in accum]
                     + [("counter", "n"), ("counter", "k")] + tail_roles)
        res_roles = ([("param", n) for n, _ in params] + [("opt", n) for n, _ in opt]
                     + rroles[:n_carried_out] + [("accum", n) for n, _ in accum]
                     + [("counter", "n"), ("counter", "k")] + rroles[n_carried_out + n_p:])
        if advance:  # what fed only the gradient goes
            remove_dead_code(block)
            _iotas_as_constants(block)
        fn = func.FuncOp(name, FunctionType.from_lists(in_types, [v.type for v in final.operands]),
                         Region(block), visibility="private", arg_attrs=role_attrs(arg_roles),
                         res_attrs=role_attrs(res_roles))
        fn.location = learn.location
        return fn

    def _update(self, em: Builder, due, p_args, o_args, acc_args, grads, rows):
        """The parameters, optimizer state and accumulators after this step: each gradient
        is added to its accumulator; when ``due``, the optimizer applies the sum and the
        accumulator restarts from zero. With an update every step (``update_every`` 1)
        the update is computed and selected element by element; otherwise each updated
        tensor comes out of its own ``stablehlo.if`` taken when due, so the steps in
        between pay for the accumulation alone (a network with millions of weights
        spends most of a step in Adam's arithmetic otherwise). An accumulator kept per
        batch row (``rows``: its permutation, else None) is summed over the batch for the
        optimizer."""
        if self.update_every == 1:
            return self._selected(em, due, p_args, o_args, acc_args, grads, rows)
        return self._branched(em, due, p_args, o_args, acc_args, grads, rows)

    @staticmethod
    def _next_t(em: Builder, due, t_arg):
        """Adam's ``t`` after this step: one more when the update is due."""
        return em.select(due, em.add(t_arg, em.full(1.0, t_arg)), t_arg)

    @staticmethod
    def _bias_corrections(b: Builder, t_arg):
        """The corrections ``1 - β^t`` of an update made now (``t`` counted with it)."""
        t_inc = b.add(t_arg, b.full(1.0, t_arg))
        bc1 = b.sub(b.full(1.0, t_arg), b.binary(shlo.PowerOp, b.full(BETA1, t_arg), t_inc))
        bc2 = b.sub(b.full(1.0, t_arg), b.binary(shlo.PowerOp, b.full(BETA2, t_arg), t_inc))
        return bc1, bc2

    @staticmethod
    def _first_moment(b: Builder, m, total):
        return b.add(b.mul(b.full(BETA1, m), m), b.mul(b.full(1 - BETA1, m), total))

    @staticmethod
    def _second_moment(b: Builder, v, total):
        return b.add(b.mul(b.full(BETA2, v), v), b.mul(b.full(1 - BETA2, v), b.mul(total, total)))

    def _step(self, b: Builder, p, total, m1=None, v1=None, bc1=None, bc2=None):
        """``p`` after SGD on ``total``, or after Adam with the new moments ``m1``, ``v1``."""
        if self.kind == "sgd":
            return b.sub(p, b.mul(b.full(self.lr, p), total))
        mhat = b.div(m1, b.broadcast_in_dim(bc1, m1.type.get_shape(), []))
        vhat = b.div(v1, b.broadcast_in_dim(bc2, v1.type.get_shape(), []))
        step = b.div(mhat, b.add(b.unary(shlo.SqrtOp, vhat), b.full(EPS, vhat)))
        return b.sub(p, b.mul(b.full(self.lr, p), step))

    def _selected(self, em: Builder, due, p_args, o_args, acc_args, grads, rows):
        """The update computed every step and selected where ``due``."""
        n_p = len(p_args)
        new_params, new_opt, new_acc = [], list(o_args), []
        if self.kind == "adam":
            new_opt[-1] = self._next_t(em, due, o_args[-1])
            bc1, bc2 = self._bias_corrections(em, o_args[-1])
        for i, (p, acc, gr, perm) in enumerate(zip(p_args, acc_args, grads, rows)):
            total = em.add(acc, gr)
            g = _batch_sum(em, total, perm)
            pred = em.broadcast_in_dim(due, p.type.get_shape(), [])
            if self.kind == "sgd":
                updated = self._step(em, p, g)
            else:
                m, v = o_args[i], o_args[n_p + i]
                m1, v1 = self._first_moment(em, m, g), self._second_moment(em, v, g)
                updated = self._step(em, p, g, m1, v1, bc1, bc2)
                new_opt[i] = em.select(pred, m1, m)
                new_opt[n_p + i] = em.select(pred, v1, v)
            new_params.append(em.select(pred, updated, p))
            new_acc.append(em.select(em.broadcast_in_dim(due, total.type.get_shape(), []),
                                     em.zeros(total), total))
        return new_params, new_opt, new_acc

    def _branched(self, em: Builder, due, p_args, o_args, acc_args, grads, rows):
        """The update computed only when ``due``: one ``stablehlo.if`` per updated tensor,
        each returning that tensor alone, behind an optimization barrier.

        Why one tensor per branch: IREE (3.13) packs the results a branch computes into
        one buffer and passes that buffer once per result to the block after the branch;
        its VM bytecode then moves the buffer out of a register that holds another of
        those results, which is left null ("ref is null" in ``hal.buffer_view.create``
        when the branch is taken; benchmarks/results/optimizer_if_repro.mlir). The
        barrier keeps the branches from being merged back into one (MLIR combines
        adjacent ``scf.if`` ops on the same condition). A branch's untaken side returns
        the old value; Adam's ``t`` is a scalar and stays outside, its corrections are
        computed in each parameter's branch."""
        n_p = len(p_args)
        totals = [em.add(acc, gr) for acc, gr in zip(acc_args, grads)]
        new_acc = [em.select(em.broadcast_in_dim(due, s.type.get_shape(), []), em.zeros(s), s)
                   for s in totals]

        def when_due(old, compute):
            then, keep = Block(), Block()
            tb = Builder(then, loc=em.loc)
            tb.ret([compute(tb)])
            Builder(keep, loc=em.loc).ret([old])
            branch = em.raw("stablehlo.if", [due], [old.type], regions=[Region(then), Region(keep)])
            return em.raw("stablehlo.optimization_barrier", [branch.results[0]],
                          [old.type]).results[0]

        new_params, new_opt = [], list(o_args)
        if self.kind == "adam":
            new_opt[-1] = self._next_t(em, due, o_args[-1])
        # a gradient kept per batch row is summed in a branch of its own, when due
        totals = [total if perm is None else
                  when_due(em.zeros(p), lambda b, total=total, perm=perm: _batch_sum(b, total, perm))
                  for p, total, perm in zip(p_args, totals, rows)]
        for i, (p, total) in enumerate(zip(p_args, totals)):
            if self.kind == "sgd":
                new_params.append(when_due(p, lambda b, p=p, total=total: self._step(b, p, total)))
                continue
            m, v = o_args[i], o_args[n_p + i]
            m1 = when_due(m, lambda b, m=m, total=total: self._first_moment(b, m, total))
            v1 = when_due(v, lambda b, v=v, total=total: self._second_moment(b, v, total))
            # Inside the parameter's branch (taken when due) m1 and v1 are the new moments;
            # the corrections are computed there too, so the steps in between skip them.
            new_params.append(when_due(p, lambda b, p=p, total=total, m1=m1, v1=v1: self._step(
                b, p, total, m1, v1, *self._bias_corrections(b, o_args[-1]))))
            new_opt[i], new_opt[n_p + i] = m1, v1
        return new_params, new_opt, new_acc
