"""tracec's automatic differentiation (passes/autodiff/, the differentiate pass)
against jax.jvp / jax.vjp, compiled and run with IREE (llvm-cpu, local-sync).

Property tests: hypothesis draws random straight-line programs (source text) over the
covered ops with random shapes, dot_general dimension numbers, reduce/broadcast
dimensions, slices, pads, transposes and convolutions. Each program is built in JAX,
lowered to StableHLO, imported, differentiated by tracec (``main_jvp`` and ``main_vjp``)
and the derivatives are compared with JAX's. IREE compiles a module in about a second
whatever its size, so the programs are collected first and compiled in a few large
modules (many functions each). A bare Heaviside ``(a > b).astype(f32)`` is compared
with ``tracec.spike(a - b)`` (the default surrogate tracec gives it).

Tolerance: rtol 1e-5 in float32, plus atol 1e-5 × the largest magnitude in the
compared array (cancellation: the same derivative is summed in a different order and
with different but equivalent formulas on each side, so an element that cancels to
near zero carries the rounding error of its largest terms).
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import tracec
from tracec.dialects import make_context
from tracec.frontends.stablehlo_io import import_text, mlir_to_generic, print_generic

IREE_FLAGS = ["--iree-hal-target-device=local", "--iree-hal-local-target-device-backends=llvm-cpu",
              "--iree-llvmcpu-target-cpu=host", "--iree-input-type=stablehlo",
              # compile time grows with the number of ops; these keep it down
              "--iree-opt-const-eval=false", "--iree-opt-level=O0"]
RTOL = 1e-5
ATOL_REL = 1e-5
# random programs; each gives one forward and one reverse case
N_PROGRAMS = int(os.environ.get("TRACEC_AUTODIFF_PROGRAMS", "160"))
PER_MODULE = 40           # programs per IREE module
SURROGATE_NAMES = ["sigmoid", "fast-sigmoid", "triangle", "arctan", "gaussian"]

# ---------------------------------------------------------------------------------
# Helpers: lower, differentiate, merge, compile, run


def lower(fn, specs, name="prog"):
    generic = mlir_to_generic(jax.jit(fn, keep_unused=True).lower(*specs).compiler_ir("stablehlo"))
    return import_text(generic, source_file=None, source_name=name)


def run_pipeline(module, spec: str):
    from tracec.driver import parse_pipeline

    ctx = make_context()
    for p in parse_pipeline(spec):
        p.apply(ctx, module)
    module.verify()
    return module


def merge(modules: list, public: set[str]):
    """One module holding every function of ``modules``, the i-th prefixed ``p{i}_``."""
    from xdsl.dialects import func
    from xdsl.dialects.builtin import ModuleOp, StringAttr, SymbolRefAttr

    out = ModuleOp([])
    for i, m in enumerate(modules):
        fns = [op for op in m.ops if isinstance(op, func.FuncOp)]
        names = {f.sym_name.data: f"p{i}_{f.sym_name.data}" for f in fns}
        for op in m.walk():
            for store in (op.properties, op.attributes):
                for k, v in list(store.items()):
                    if isinstance(v, SymbolRefAttr) and v.root_reference.data in names:
                        store[k] = SymbolRefAttr(names[v.root_reference.data])
        for f in fns:
            old = f.sym_name.data
            f.sym_name = StringAttr(names[old])
            f.sym_visibility = StringAttr("public" if old in public else "private")
            f.detach()
            out.body.block.add_op(f)
    return out


def compile_iree(module):
    import iree.compiler as ic
    import iree.runtime as rt

    vmfb = ic.tools.compile_str(print_generic(module), extra_args=IREE_FLAGS)
    return rt.load_vm_flatbuffer(vmfb, driver="local-sync")


def call(loaded, name, args):
    res = getattr(loaded, name)(*[np.array(a, dtype=np.float32, order="C") for a in args])
    res = res if isinstance(res, (tuple, list)) else [res]
    return [np.asarray(r.to_host() if hasattr(r, "to_host") else r) for r in res]


def mismatch(got, want) -> str | None:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return f"shape {got.shape} != {want.shape}"
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    atol = ATOL_REL * scale
    bad = np.abs(got - want) > atol + RTOL * np.abs(want)
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, np.abs(got - want), -1)), got.shape)
        return (f"{int(bad.sum())} of {got.size} elements differ; worst at {tuple(int(k) for k in i)}: "
                f"tracec {got[i]!r} vs jax {want[i]!r} (atol {atol:.3g}, rtol {RTOL})")
    return None


# ---------------------------------------------------------------------------------
# Random programs (source text, so a failing one prints as it was built)

LAYOUTS = {3: [("NCH", "OIH", "NCH"), ("NHC", "HIO", "NHC"), ("NCH", "HIO", "NHC")],
           4: [("NCHW", "OIHW", "NCHW"), ("NHWC", "HWIO", "NHWC"), ("NCHW", "HWIO", "NHWC")]}

UNARY = {"tanh": "jnp.tanh({0})", "exponential": "jnp.exp({0})", "negate": "-{0}",
         "abs": "jnp.abs({0})", "logistic": "jax.nn.sigmoid({0})", "expm1": "jnp.expm1({0})",
         "sine": "jnp.sin({0})", "cosine": "jnp.cos({0})", "scale": "({0} * 0.5)"}
# ops with a restricted domain, fed values inside it ({1}: a second operand)
SAFE = {"log": "jnp.log({0} * {0} + 0.5)", "log1p": "jnp.log1p({0} * {0})",
        "sqrt": "jnp.sqrt({0} * {0} + 0.25)", "rsqrt": "jax.lax.rsqrt({0} * {0} + 0.25)",
        "divide": "{1} / ({0} * {0} + 0.5)", "power": "jnp.power({0} * {0} + 0.5, {1})",
        "remainder": "jnp.fmod({1}, {0} * {0} + 0.5)"}
BINARY = {"add": "{0} + {1}", "subtract": "{0} - {1}", "multiply": "{0} * {1}",
          "maximum": "jnp.maximum({0}, {1})", "minimum": "jnp.minimum({0}, {1})"}
# zero derivative for the first operand
ZERO = {"floor": "jnp.floor({0} * 3.0) * {1}", "sign": "jnp.sign({0}) * {1}",
        "round": "jnp.round({0} * 3.0) * {1}", "ceil": "jnp.ceil({0} * 2.0) + {1}",
        "integer": "(({0} * 4.0).astype(jnp.int32) % 3).astype(jnp.float32) * {1}"}
REDUCE = {"reduce_sum": "sum", "reduce_max": "max", "reduce_min": "min"}
STRUCTURAL = ["select", "clamp", "broadcast", "reshape", "transpose", "slice", "dynamic_slice",
              "dynamic_update_slice", "concatenate", "pad", "dot_general", "convolution", "spike",
              "heaviside", "stop_gradient", "iota", "gather", "scatter_add", "scatter_set",
              "reduce_window"]
#: every kind of op the generator writes; each is the root of some programs
KINDS = list(UNARY) + list(SAFE) + list(BINARY) + list(ZERO) + list(REDUCE) + STRUCTURAL


class ProgramBuilder:
    """Builds one random program top-down: ``expr(shape, depth)`` returns a variable
    of that shape computed by a random op whose operands are built recursively."""

    def __init__(self, draw):
        self.draw = draw
        self.inputs: list[tuple[str, tuple]] = []
        self.lines: list[str] = []
        self.pool: dict[tuple, list[str]] = {}
        self.n = 0

    # -- basics

    def pick(self, options):
        return self.draw(st.sampled_from(options))

    def int_(self, lo, hi):
        return self.draw(st.integers(lo, hi))

    def bool_(self):
        return self.draw(st.booleans())

    def emit(self, shape, tracec_expr, ref_expr=None) -> str:
        name = f"v{self.n}"
        self.n += 1
        if ref_expr is None:
            self.lines.append(f"{name} = {tracec_expr}")
        else:
            self.lines.append(f"{name} = ({tracec_expr}) if TRACEC else ({ref_expr})")
        self.pool.setdefault(tuple(shape), []).append(name)
        return name

    def leaf(self, shape) -> str:
        shape = tuple(shape)
        same = [n for n, s in self.inputs if s == shape]
        choice = self.int_(0, 9)
        if choice == 0:
            return f"jnp.full({shape}, {self.pick([0.5, -1.25, 2.0])}, jnp.float32)"
        if choice <= 2 and self.pool.get(shape):
            return self.pick(self.pool[shape])  # a shared value: cotangents add up
        if same and (choice <= 5 or len(self.inputs) >= 4):
            return self.pick(same)
        if len(self.inputs) >= 4:
            return f"jnp.full({shape}, 0.75, jnp.float32)"
        name = f"x{len(self.inputs)}"
        self.inputs.append((name, shape))
        return name

    def shape(self, min_rank=0, max_rank=3, max_dim=4):
        rank = self.int_(min_rank, max_rank)
        return tuple(self.int_(1, max_dim) for _ in range(rank))

    @staticmethod
    def fits(kind, shape) -> bool:
        if kind in ("transpose", "slice", "dynamic_slice", "dynamic_update_slice", "concatenate",
                    "iota", "scatter_add", "scatter_set", "reduce_window"):
            return len(shape) >= 1
        if kind == "convolution":
            return len(shape) in LAYOUTS
        return True

    def root_shape(self, kind):
        if kind == "convolution":
            rank = self.int_(3, 4)
            s = [self.int_(1, 3) for _ in range(rank)]
            s[1] = self.pick([1, 2, 4])  # an even channel count allows groups
            return tuple(s)
        return self.shape(1 if not self.fits(kind, ()) else 0)

    # -- expressions

    def expr(self, shape, depth, kind=None) -> str:
        shape = tuple(shape)
        if kind is None:
            if depth <= 0:
                return self.leaf(shape)
            kind = self.pick([k for k in KINDS if self.fits(k, shape)])
        d = depth - 1
        for table, method in ((UNARY, self._unary), (SAFE, self._safe), (BINARY, self._binary),
                              (ZERO, self._binary), (REDUCE, self._reduce)):
            if kind in table:
                return method(shape, d, table[kind])
        return getattr(self, "_" + kind)(shape, d)

    def _unary(self, shape, d, form):
        return self.emit(shape, form.format(self.expr(shape, d)))

    def _safe(self, shape, d, form):
        a = self.expr(shape, d)
        b = self.expr(shape, d) if "{1}" in form else None
        return self.emit(shape, form.format(a, b))

    def _binary(self, shape, d, form):
        a, b = self.expr(shape, d), self.expr(shape, d)
        if shape and self.int_(0, 3) == 0:  # a scalar operand, broadcast by jnp
            b = self.expr((), d)
        return self.emit(shape, form.format(a, b))

    def _clamp(self, shape, d):
        a = self.expr(shape, d)
        if self.bool_():
            return self.emit(shape, f"jax.lax.clamp(-0.4, {a}, 0.3)")
        b = self.expr(shape, d)
        return self.emit(shape, f"jax.lax.clamp({b} - 0.5, {a}, {b} + 0.5)")

    def _select(self, shape, d):
        a, b, c, e = (self.expr(shape, d) for _ in range(4))
        return self.emit(shape, f"jnp.where({a} > {b}, {c}, {e})")

    def _iota(self, shape, d):
        a = self.expr(shape, d)
        if not shape:
            return self.emit(shape, f"{a} * 2.0")
        dim = self.int_(0, len(shape) - 1)
        return self.emit(shape, f"{a} * jax.lax.broadcasted_iota(jnp.float32, {shape}, {dim})")

    def _spike(self, shape, d):
        a = self.expr(shape, d)
        surrogate = self.pick(SURROGATE_NAMES)
        alpha = self.pick([0.5, 1.0, 2.0, 4.0])
        return self.emit(shape, f"tracec.spike({a}, {surrogate!r}, {alpha})")

    def _heaviside(self, shape, d):
        a, b = self.expr(shape, d), self.expr(shape, d)
        return self.emit(shape, f"({a} > {b}).astype(jnp.float32)", f"tracec.spike({a} - {b})")

    def _stop_gradient(self, shape, d):
        a, b = self.expr(shape, d), self.expr(shape, d)
        return self.emit(shape, f"tracec.stop_gradient({a}) * {b}")

    def _reduce(self, shape, d, fn):
        full = list(shape)
        dims: list[int] = []
        for _ in range(self.int_(1, 2)):
            pos = self.int_(0, len(full))
            full.insert(pos, self.int_(1, 4))
            dims = [p + (p >= pos) for p in dims] + [pos]
        a = self.expr(tuple(full), d)
        return self.emit(shape, f"jnp.{fn}({a}, axis={tuple(sorted(dims))})")

    def _broadcast(self, shape, d):
        kept = [i for i in range(len(shape)) if self.bool_()]
        operand = tuple(shape[i] if self.int_(0, 3) else 1 for i in kept)
        a = self.expr(operand, d)
        return self.emit(shape, f"jax.lax.broadcast_in_dim({a}, {shape}, {tuple(kept)})")

    def _reshape(self, shape, d):
        total = int(np.prod(shape)) if shape else 1
        factors, n = [], total
        for p in (2, 3, 5, 7):
            while n % p == 0:
                factors.append(p)
                n //= p
        if n > 1:
            factors.append(n)
        rank = self.int_(0 if total == 1 else 1, 3)
        dims = [1] * rank
        for f in factors:
            dims[self.int_(0, rank - 1)] *= f
        a = self.expr(tuple(dims), d)
        return self.emit(shape, f"jnp.reshape({a}, {shape})")

    def _transpose(self, shape, d):
        perm = list(self.draw(st.permutations(range(len(shape)))))
        inv = np.argsort(perm)
        a = self.expr(tuple(shape[int(inv[j])] for j in range(len(shape))), d)
        return self.emit(shape, f"jnp.transpose({a}, {tuple(perm)})")

    def _slice(self, shape, d):
        start, limit, strides, operand = [], [], [], []
        for n in shape:
            s, st_ = self.int_(0, 2), self.int_(1, 2)
            lim = s + (n - 1) * st_ + 1
            start.append(s), limit.append(lim), strides.append(st_)
            operand.append(lim + self.int_(0, 2))
        a = self.expr(tuple(operand), d)
        return self.emit(shape, f"jax.lax.slice({a}, {tuple(start)}, {tuple(limit)}, {tuple(strides)})")

    def _start(self, limit, d) -> str:
        """A start index: a constant in [0, limit], or computed from a value (then any
        integer: dynamic_slice clamps it, in JAX as in StableHLO)."""
        if self.bool_():
            return str(self.int_(0, limit))
        return f"(jnp.abs({self.expr((), d)}) * {limit + 1.5}).astype(jnp.int32)"

    def _dynamic_slice(self, shape, d):
        extra = [self.int_(0, 2) for _ in shape]
        starts = ", ".join(self._start(e, d) for e in extra)
        a = self.expr(tuple(n + e for n, e in zip(shape, extra)), d)
        return self.emit(shape, f"jax.lax.dynamic_slice({a}, ({starts},), {shape})")

    def _dynamic_update_slice(self, shape, d):
        upd = tuple(self.int_(1, n) for n in shape)
        starts = ", ".join(self._start(n - u, d) for n, u in zip(shape, upd))
        a, u = self.expr(shape, d), self.expr(upd, d)
        return self.emit(shape, f"jax.lax.dynamic_update_slice({a}, {u}, ({starts},))")

    def index(self, shape, m, d) -> str:
        """Integer indices of ``shape`` in [0, m), computed from float values by integer
        and comparison ops (no derivative flows through them)."""
        form = self.pick(["floor", "bits", "argmax", "argmin"])
        if form.startswith("arg"):
            b = self.expr(tuple(shape) + (m,), d)
            return f"jnp.{form}({b}, axis=-1)"
        b = self.expr(shape, d)
        if form == "floor":
            return f"((jnp.abs({b}) * {2.7 * m}).astype(jnp.int32) % {m})"
        return f"(((jax.lax.bitcast_convert_type({b}, jnp.int32) >> 9) & 0x3fff) % {m})"

    def _gather(self, shape, d):
        r = len(shape)
        # (indices in range: IREE's gather does not clamp, see test_gather_and_scatter)
        form = self.pick(["take"] + (["along", "pairs"] if r else []))
        m = self.int_(1, 4)
        if form == "take":  # jnp.take / integer-array indexing along axis k
            k = self.int_(0, r)
            p = self.int_(0, r - k)
            a = self.expr(shape[:k] + (m,) + shape[k + p:], d)
            idx = self.index(shape[k:k + p], m, d)
            if self.bool_():  # negative indices count from the end
                idx = f"(-1 - {idx})"
            return self.emit(shape, f"jnp.take({a}, {idx}, axis={k})")
        if form == "along":
            k = self.int_(0, r - 1)
            a = self.expr(shape[:k] + (m,) + shape[k + 1:], d)
            return self.emit(shape, f"jnp.take_along_axis({a}, {self.index(shape, m, d)}, axis={k})")
        a = self.expr((shape[0], m) + shape[1:], d)  # a[arange(n), idx]: two index components
        return self.emit(shape, f"{a}[jnp.arange({shape[0]}), {self.index(shape[:1], m, d)}]")

    def _scatter_add(self, shape, d):
        k = self.int_(0, len(shape) - 1)
        n, p = shape[k], self.int_(1, 4)
        idx = self.index((p,), n, d)  # indices may repeat
        u = self.expr(shape[:k] + (p,) + shape[k + 1:], d)
        if k == 0 and self.bool_():
            return self.emit(shape, f"jax.ops.segment_sum({u}, {idx}, num_segments={n})")
        a = self.expr(shape, d)
        return self.emit(shape, f"{a}.at[{':, ' * k}{idx}].add({u})")

    def _scatter_set(self, shape, d):
        # distinct indices (which of two updates of one place wins is the backend's
        # choice; tests/test_autodiff.py's targeted test has repeats)
        k = self.int_(0, len(shape) - 1)
        n = shape[k]
        p = self.int_(1, n)
        idx = f"jnp.argsort({self.expr((n,), d)})[:{p}]"
        a, u = self.expr(shape, d), self.expr(shape[:k] + (p,) + shape[k + 1:], d)
        return self.emit(shape, f"{a}.at[{':, ' * k}{idx}].set({u})")

    def _reduce_window(self, shape, d):
        form = self.pick(["sum", "max", "min", "cumsum", "cumprod", "cummax", "cummin"])
        if form.startswith("cum"):
            a = self.expr(shape, d)
            k, rev = self.int_(0, len(shape) - 1), self.bool_()
            return self.emit(shape, f"jax.lax.{form}({a}, axis={k}, reverse={rev})")
        window, strides, pads, base, wdil, operand = [], [], [], [], [], []
        for out in shape:
            w, s = self.int_(1, 3), self.int_(1, 2)
            # dilations for sums only: JAX has no reverse mode for a max with window
            # dilation, and a base-dilated max can have windows of holes only (-inf)
            b, wd = (self.int_(1, 2), self.int_(1, 2)) if form == "sum" else (1, 1)
            span = (w - 1) * wd + 1
            lo, hi = self.int_(0, span - 1), self.int_(0, span - 1)
            # (no elements left over past the last window: IREE 3.13 fails to compile
            # some reduce_windows with padding that leave some)
            size = next((h for h in range(1, 24) if (h - 1) * b + 1 + lo + hi - span >= 0
                         and ((h - 1) * b + 1 + lo + hi - span) % s == 0
                         and ((h - 1) * b + 1 + lo + hi - span) // s + 1 == out), None)
            if size is None:
                w, s, b, wd, lo, hi, size = 1, 1, 1, 1, 0, 0, out
            window.append(w), strides.append(s), pads.append((lo, hi)), base.append(b)
            wdil.append(wd), operand.append(size)
        init, fn = {"sum": ("0.0", "add"), "max": ("-jnp.inf", "max"), "min": ("jnp.inf", "min")}[form]
        a = self.expr(tuple(operand), d)
        return self.emit(shape, f"jax.lax.reduce_window({a}, {init}, jax.lax.{fn}, {tuple(window)}, "
                                f"{tuple(strides)}, {pads}, {tuple(base)}, {tuple(wdil)})")

    def _concatenate(self, shape, d):
        dims = [i for i, n in enumerate(shape) if n >= 2]
        if not dims:  # nothing to split: concatenate along a new size-1 dimension
            a = self.expr(shape, d)
            return self.emit(shape, f"jnp.concatenate([{a}[:0], {a}], axis=0)")
        k = self.pick(dims)
        cut = self.int_(1, shape[k] - 1)
        s1, s2 = list(shape), list(shape)
        s1[k], s2[k] = cut, shape[k] - cut
        a, b = self.expr(tuple(s1), d), self.expr(tuple(s2), d)
        return self.emit(shape, f"jnp.concatenate([{a}, {b}], axis={k})")

    def _pad(self, shape, d):
        config, operand = [], []
        for n in shape:
            for _ in range(4):
                lo, hi, it = self.int_(-1, 2), self.int_(-1, 2), self.int_(0, 1)
                m, r = divmod(n - lo - hi + it, 1 + it)
                if r == 0 and m >= 1:
                    break
            else:
                lo, hi, it, m = 0, 0, 0, n
            config.append((lo, hi, it))
            operand.append(m)
        a = self.expr(tuple(operand), d)
        if self.bool_():
            # (JAX's own pad transpose fails when only the padding value is traced:
            # the reference makes the operand depend on it, by adding 0·v)
            v = self.expr((), d)
            return self.emit(shape, f"jax.lax.pad({a}, {v}, {config})",
                             f"jax.lax.pad({a} + 0.0 * {v}, {v}, {config})")
        return self.emit(shape, f"jax.lax.pad({a}, jnp.float32(0.5), {config})")

    def _dot_general(self, shape, d):
        rank = len(shape)
        k = self.int_(0, rank)
        na = self.int_(0, rank - k)
        nb = rank - k - na
        nc = self.int_(0, 2)
        csizes = [self.int_(1, 4) for _ in range(nc)]

        def side(n_free, free_sizes):
            tags = [("b", i) for i in range(k)] + [("f", 0)] * n_free + [("c", i) for i in range(nc)]
            order = list(self.draw(st.permutations(tags)))
            fi = iter(range(n_free))  # free dimensions keep their order in the result
            order = [("f", next(fi)) if t == "f" else (t, i) for t, i in order]
            shp = [shape[i] if t == "b" else free_sizes[i] if t == "f" else csizes[i] for t, i in order]
            return tuple(shp), [order.index(("b", i)) for i in range(k)], \
                [order.index(("c", i)) for i in range(nc)]

        lshape, lb, lc = side(na, list(shape[k:k + na]))
        rshape, rb, rc = side(nb, list(shape[k + na:]))
        a, b = self.expr(lshape, d), self.expr(rshape, d)
        return self.emit(shape, f"jax.lax.dot_general({a}, {b}, (({lc}, {rc}), ({lb}, {rb})))")

    def _convolution(self, shape, d):
        nsp = len(shape) - 2
        lhs_l, rhs_l, out_l = self.pick(LAYOUTS[len(shape)])
        sp_names = "HW"[:nsp]
        out_n, out_c = shape[out_l.index("N")], shape[out_l.index("C")]
        fgc = bgc = 1
        if out_c % 2 == 0:
            groups = self.pick(["none", "feature", "batch"])
            fgc, bgc = (2, 1) if groups == "feature" else (1, 2) if groups == "batch" else (1, 1)
        cg = self.int_(1, 2)
        in_c, in_n = cg * fgc, out_n * bgc
        strides, pads, ldil, rdil, ksz, insz = [], [], [], [], [], []
        for k in range(nsp):
            out = shape[out_l.index(sp_names[k])]
            kk, s, rd, ld = self.int_(1, 3), self.int_(1, 2), self.int_(1, 2), self.pick([1, 1, 2])
            kd = (kk - 1) * rd + 1
            lo, hi = self.int_(0, kd - 1), self.int_(0, kd - 1)
            size = next((h for h in range(1, 24)
                         if (h - 1) * ld + 1 + lo + hi - kd >= 0
                         and ((h - 1) * ld + 1 + lo + hi - kd) // s + 1 == out), None)
            if size is None:
                kk, s, rd, ld, lo, hi, size = 1, 1, 1, 1, 0, 0, out
            strides.append(s), pads.append((lo, hi)), ldil.append(ld), rdil.append(rd)
            ksz.append(kk), insz.append(size)
        lshape, rshape = [0] * len(shape), [0] * len(shape)
        lshape[lhs_l.index("N")], lshape[lhs_l.index("C")] = in_n, in_c
        rshape[rhs_l.index("O")], rshape[rhs_l.index("I")] = out_c, cg
        for k in range(nsp):
            lshape[lhs_l.index(sp_names[k])] = insz[k]
            rshape[rhs_l.index(sp_names[k])] = ksz[k]
        a, b = self.expr(tuple(lshape), d), self.expr(tuple(rshape), d)
        return self.emit(shape, f"jax.lax.conv_general_dilated({a}, {b}, {tuple(strides)}, {pads}, "
                                f"{tuple(ldil)}, {tuple(rdil)}, {(lhs_l, rhs_l, out_l)!r}, "
                                f"feature_group_count={fgc}, batch_group_count={bgc})")

    # -- the program

    def source(self, outputs: list[str]) -> str:
        args = ", ".join(n for n, _ in self.inputs)
        body = "".join(f"    {line}\n" for line in self.lines)
        return f"def f({args}):\n{body}    return ({', '.join(outputs)},)\n"


@st.composite
def programs(draw, root: str):
    """A random program whose first output is computed by a ``root`` op (so every kind
    of op is the root of some programs), with random ops below it."""
    b = ProgramBuilder(draw)
    outs = [b.expr(b.root_shape(root), draw(st.integers(1, 4)), kind=root)]
    if draw(st.booleans()):
        outs.append(b.expr(b.shape(), draw(st.integers(1, 3))))
    if not b.inputs:  # only constants so far: give the program an input
        b.inputs.append(("x0", ()))
        outs.append(b.emit((), "x0 * 2.0"))
    return b.source(outs), [s for _, s in b.inputs], draw(st.integers(0, 2 ** 31 - 1))


def build(source: str, tracec_form: bool):
    scope = {"jax": jax, "jnp": jnp, "tracec": tracec, "TRACEC": tracec_form}
    exec(source, scope)
    return scope["f"]


def collect_programs(n: int) -> list:
    """``n`` programs drawn by hypothesis, spread evenly over the root kinds."""
    found = []
    for i, root in enumerate(KINDS):
        count = n // len(KINDS) + (i < n % len(KINDS))
        if not count:
            continue

        @settings(max_examples=count, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(programs(root))
        def gather(program):
            if len(found) < n and program not in found:
                found.append(program)

        gather()
    return found


# ---------------------------------------------------------------------------------
# The property test


def _references(cases):
    """JAX's jvp and vjp of every program of a batch, in one jitted function (one XLA
    compile per batch instead of one per primitive and shape in eager mode)."""
    refs = [c["ref"] for c in cases]

    def all_refs(args):
        out = []
        for ref, (xs, ts, cts) in zip(refs, args):
            outs, touts = jax.jvp(ref, tuple(xs), tuple(ts))
            outs_r, pullback = jax.vjp(ref, *xs)
            out.append((list(outs) + list(touts), list(outs_r) + list(pullback(tuple(cts)))))
        return out

    res = jax.jit(all_refs)([(c["xs"], c["ts"], c["cts"]) for c in cases])
    for c, (fwd, rev) in zip(cases, res):
        c["want_forward"] = [np.asarray(v) for v in fwd]
        c["want_reverse"] = [np.asarray(v) for v in rev]


def _prepare(program):
    source, shapes, seed = program
    rng = np.random.default_rng(seed)
    xs = [rng.uniform(-1.0, 1.0, s).astype(np.float32) for s in shapes]
    ts = [rng.normal(size=s).astype(np.float32) for s in shapes]
    specs = [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]
    module = lower(build(source, True), specs)
    run_pipeline(module, "inline-private-functions,differentiate{mode=forward func=main},"
                         "differentiate{mode=reverse func=main}")
    ref = build(source, False)
    outs = jax.eval_shape(ref, *specs)
    cts = [rng.normal(size=o.shape).astype(np.float32) for o in outs]
    return dict(source=source, xs=xs, ts=ts, cts=cts, module=module, ref=ref, n_out=len(outs))


@pytest.fixture(scope="module")
def program_results():
    """Every random program lowered, differentiated, compiled (in batches, one IREE
    compile at a time, overlapped with the JAX references) and run."""
    import concurrent.futures

    import iree.compiler as ic
    import iree.runtime as rt

    t0 = time.time()
    programs_ = collect_programs(N_PROGRAMS)
    batches = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as iree_compiler:
        for start in range(0, len(programs_), PER_MODULE):
            cases = [_prepare(p) for p in programs_[start:start + PER_MODULE]]
            text = print_generic(merge([c["module"] for c in cases], {"main_jvp", "main_vjp"}))
            for c in cases:
                del c["module"]
            job = iree_compiler.submit(ic.tools.compile_str, text, extra_args=IREE_FLAGS)
            _references(cases)
            batches.append((cases, job))
        results = []
        for cases, job in batches:
            loaded = rt.load_vm_flatbuffer(job.result(), driver="local-sync")
            for i, c in enumerate(cases):
                c["forward"] = call(loaded, f"p{i}_main_jvp", c["xs"] + c["ts"])
                c["reverse"] = call(loaded, f"p{i}_main_vjp", c["xs"] + c["cts"])
                results.append(c)
    return results, time.time() - t0


def _check(case, mode):
    want, got, n_out = case[f"want_{mode}"], case[mode], case["n_out"]
    if not all(np.isfinite(w).all() for w in want):
        return "skip"
    for k, (g, w) in enumerate(zip(got, want)):
        problem = mismatch(g, w)
        if problem:
            what = (f"output {k}" if k < n_out else
                    f"{'tangent of output' if mode == 'forward' else 'cotangent of input'} {k - n_out}")
            return f"{mode} mode, {what}: {problem}"
    return None


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_random_programs_match_jax(program_results, mode):
    results, seconds = program_results
    failures, skipped = [], 0
    for case in results:
        problem = _check(case, mode)
        if problem == "skip":
            skipped += 1
        elif problem:
            failures.append(f"{problem}\n{case['source']}")
    print(f"{len(results)} programs, {mode} mode, {skipped} skipped (non-finite reference), "
          f"all programs built, differentiated, compiled and run in {seconds:.1f} s")
    assert len(results) >= 0.9 * N_PROGRAMS
    assert skipped <= 0.05 * len(results)
    assert not failures, f"{len(failures)} program(s) differ from JAX; first ones:\n\n" + \
        "\n".join(failures[:5])


# ---------------------------------------------------------------------------------
# Surrogates of tracec.spike: exactly docs/design.md section 2's formulas

ALPHAS = [0.5, 1.0, 2.0, 4.0, 7.5]


def _formula(name, x, a):
    x = x.astype(np.float64)
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-a * x))
        return a * s * (1.0 - s)
    if name == "fast-sigmoid":
        return 1.0 / (1.0 + a * np.abs(x)) ** 2
    if name == "triangle":
        return np.maximum(0.0, 1.0 - np.abs(x) / a) / a
    if name == "arctan":
        return (a / 2.0) / (1.0 + (np.pi * a * x / 2.0) ** 2)
    if name == "gaussian":
        return np.exp(-x ** 2 / (2.0 * a ** 2)) / (np.sqrt(2.0 * np.pi) * a)
    raise ValueError(name)


def test_spike_surrogates_follow_the_design_formulas():
    x = np.linspace(-3.0, 3.0, 241, dtype=np.float32)
    spec = jax.ShapeDtypeStruct(x.shape, jnp.float32)
    modules, keys = [], []
    for name in SURROGATE_NAMES:
        for alpha in ALPHAS:
            m = lower(lambda v, name=name, alpha=alpha: tracec.spike(v, name, alpha), [spec])
            run_pipeline(m, "differentiate{mode=forward func=main},differentiate{mode=reverse func=main}")
            modules.append(m)
            keys.append((name, alpha))
    loaded = compile_iree(merge(modules, {"main_jvp", "main_vjp"}))
    ones = np.ones_like(x)
    for i, (name, alpha) in enumerate(keys):
        want = _formula(name, x, alpha)
        fwd = call(loaded, f"p{i}_main_jvp", [x, ones])
        rev = call(loaded, f"p{i}_main_vjp", [x, ones])
        np.testing.assert_array_equal(fwd[0], (x > 0).astype(np.float32))
        for got in (fwd[1], rev[1]):
            np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7 * want.max(),
                                       err_msg=f"surrogate {name}, alpha {alpha}")
        # and JAX's own custom_jvp of tracec.spike agrees with tracec's derivative
        jax_d = jax.jvp(lambda v: tracec.spike(v, name, alpha), (x,), (ones,))[1]
        np.testing.assert_allclose(fwd[1], jax_d, rtol=2e-6, atol=1e-7 * want.max())


# ---------------------------------------------------------------------------------
# Building blocks: seeds at intermediate values, cut edges, warnings, errors


def _step_like(x, w, v):
    y = x @ w                      # a parameter matmul
    h = 0.9 * v + y
    z = tracec.spike(h - 0.5)
    g = tracec.stop_gradient(h) * z
    return jnp.tanh(h) + g


def test_building_blocks_seed_anywhere_and_cut():
    from xdsl.dialects import func

    from tracec.dialects import stablehlo as shlo
    from tracec.passes.autodiff import engine as ad
    from tracec.passes.ir.module import functions

    specs = [jax.ShapeDtypeStruct((3, 4), jnp.float32), jax.ShapeDtypeStruct((4, 5), jnp.float32),
             jax.ShapeDtypeStruct((3, 5), jnp.float32)]
    m = lower(_step_like, specs)
    run_pipeline(m, "inline-private-functions")
    fn = functions(m)["main"]
    block = fn.body.block
    x, w, v = block.args
    dot = next(op for op in block.ops if isinstance(op, shlo.DotGeneralOp))
    h = next(op for op in block.ops if isinstance(op, shlo.AddOp)).results[0]
    out = block.last_op.operands[0]

    # forward: tangent seeded at v only, matmul cut: d out / d v · t
    new_args = [block.insert_arg(v.type, len(block.args)) for _ in range(2)]
    tv, ch = new_args
    tangents = ad.jvp(fn, {v: tv}, cut={dot}, wanted=[out])
    assert x not in tangents and dot.results[0] not in tangents
    # reverse: cotangent seeded at the intermediate h, wrt v and w, cut the matmul's rhs edge
    cot = ad.vjp(fn, {h: ch}, cut={(dot, 1)}, wrt=[v, w])
    assert w not in cot and v in cot and x not in cot
    ret = block.last_op
    new_ret = func.ReturnOp(out, tangents[out], cot[v])
    block.insert_op_before(new_ret, ret)
    ret.detach()
    ret.erase()
    ad.remove_dead_code(block)
    from xdsl.dialects.builtin import FunctionType

    fn.function_type = FunctionType.from_lists([a.type for a in block.args],
                                               [o.type for o in new_ret.operands])
    fn.arg_attrs = None
    fn.res_attrs = None
    loaded = compile_iree(merge([m], {"main"}))
    rng = np.random.default_rng(0)
    xv, wv, vv, tvv, chv = (rng.normal(size=a.type.get_shape()).astype(np.float32)
                            for a in block.args)
    got = call(loaded, "p0_main", [xv, wv, vv, tvv, chv])
    want_t = jax.jvp(lambda vv_: _step_like(xv, wv, vv_), (vv,), (tvv,))[1]
    np.testing.assert_allclose(got[1], want_t, rtol=1e-5, atol=1e-6)
    # d h / d v = 0.9: the cotangent at h pulled back to v
    np.testing.assert_allclose(got[2], 0.9 * chv, rtol=1e-6)


def test_bare_heaviside_warns_with_the_line():
    from tracec.passes.autodiff import engine as ad

    def f(v):
        return (v > 0.25).astype(jnp.float32)  # the line named in the warning

    m = lower(f, [jax.ShapeDtypeStruct((4,), jnp.float32)])
    text = mlir_to_generic(jax.jit(f).lower(jax.ShapeDtypeStruct((4,), jnp.float32)).compiler_ir("stablehlo"))
    m = import_text(text, source_file=__file__, source_name="f")
    run_pipeline(m, "differentiate{mode=reverse func=main}")
    warnings = ad.module_warnings(m)
    line = f.__code__.co_firstlineno + 1
    assert len(warnings) == 1 and f"test_autodiff.py:{line}:" in warnings[0]
    assert "default surrogate (sigmoid, alpha 4.0)" in warnings[0]
    assert ad.pop_warnings(m) == warnings and ad.module_warnings(m) == []


def test_op_without_rule_is_an_error_with_the_line():
    from tracec.diagnostics import TracecError

    def f(v):
        return jnp.cbrt(v)  # no rule for stablehlo.cbrt

    text = mlir_to_generic(jax.jit(f).lower(jax.ShapeDtypeStruct((4,), jnp.float32)).compiler_ir("stablehlo"))
    m = import_text(text, source_file=__file__, source_name="f")
    with pytest.raises(TracecError) as e:
        run_pipeline(m, "differentiate{mode=forward func=main}")
    message = str(e.value)
    assert f"test_autodiff.py:{f.__code__.co_firstlineno + 1}:" in message
    assert "stablehlo.cbrt" in message and "no derivative rule" in message
    assert "docs/passes.md" in message
    assert "stop_gradient" not in message  # the loss depends on it: no gradient would be wrong
    # an op with no rule that no derivative passes through is fine
    m = lower(lambda v, u: (jnp.cbrt(u), v * 2.0), [jax.ShapeDtypeStruct((4,), jnp.float32)] * 2)
    from tracec.passes.autodiff import engine as ad
    from tracec.passes.ir.module import functions

    fn = functions(m)["main"]
    tangents = ad.jvp(fn, {fn.body.block.args[0]: fn.body.block.args[0]})
    assert fn.body.block.last_op.operands[1] in tangents


def test_emitted_ir_is_small():
    """No derivative work for inactive values, zeros folded, shared subexpressions once."""
    from tracec.passes.ir.module import functions, op_name

    def f(x, c):
        k = jnp.exp(c) * 3.0          # inactive: depends only on c (no tangent for c given)
        y = x * k + x * 0.0           # x*0 folds away
        return jnp.tanh(y) * jnp.tanh(y)

    specs = [jax.ShapeDtypeStruct((8,), jnp.float32)] * 2
    m = lower(f, specs)
    from tracec.passes.autodiff import engine as ad
    from tracec.passes.ir.builder import Builder

    fn = functions(m)["main"]
    x, c = fn.body.block.args
    before = len(list(fn.body.block.ops))
    em = Builder(fn.body.block)
    t = ad.jvp(fn, {x: x}, builder=em)
    names = [op_name(op) for op in em.new_ops]
    assert "stablehlo.exponential" not in names
    assert names.count("stablehlo.tanh") == 0      # the primal tanh is reused
    assert fn.body.block.last_op.operands[0] in t
    assert len(em.new_ops) <= 8, names
    assert len(list(fn.body.block.ops)) == before + len(em.new_ops)


def test_lif2_step_derivatives_match_jax():
    """The bundled example: tracec's step_jvp / step_vjp against jax.jvp / jax.vjp of
    the same step (surrogate spikes, recurrent matmuls, biases, leaky readout)."""
    import importlib.util

    from conftest import EXAMPLES

    from tracec.frontends.stablehlo_io import parse_generic
    from tracec.passes.ir.module import functions

    path = os.path.join(EXAMPLES, "lif2.py")
    spec = importlib.util.spec_from_file_location("lif2_example", path)
    lif2 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lif2)
    module = parse_generic(tracec.compile(path, emit="stablehlo").ir["stablehlo"])
    run_pipeline(module, "differentiate{mode=forward func=step},differentiate{mode=reverse func=step}")
    step = functions(module)["step"]
    loaded = compile_iree(merge([module], {"step_jvp", "step_vjp"}))

    rng = np.random.default_rng(1)
    params = lif2.init_params(jax.random.PRNGKey(0))
    state = jax.tree_util.tree_map(
        lambda a: rng.normal(size=a.shape).astype(np.float32), lif2.init_state(lif2.B))
    x = rng.normal(size=(lif2.B, lif2.N_IN)).astype(np.float32)
    primals = (params, state, x)
    flat, tree = jax.tree_util.tree_flatten(primals)
    assert [list(a.shape) for a in flat] == [list(t.get_shape()) for t in step.function_type.inputs]
    tangents = [rng.normal(size=a.shape).astype(np.float32) for a in flat]
    outs, touts = jax.jvp(lif2.step, primals, jax.tree_util.tree_unflatten(tree, tangents))
    out_flat = jax.tree_util.tree_leaves(outs)
    cts = [rng.normal(size=a.shape).astype(np.float32) for a in out_flat]
    _, pullback = jax.vjp(lif2.step, *primals)
    cin = jax.tree_util.tree_leaves(pullback(jax.tree_util.tree_unflatten(
        jax.tree_util.tree_structure(outs), cts)))

    got = call(loaded, "p0_step_jvp", flat + tangents)
    for g, w in zip(got, out_flat + jax.tree_util.tree_leaves(touts)):
        assert mismatch(g, w) is None, mismatch(g, w)
    got = call(loaded, "p0_step_vjp", flat + cts)
    for g, w in zip(got, out_flat + cin):
        assert mismatch(g, w) is None, mismatch(g, w)


# StableHLO that JAX does not emit but other producers may: scalar clamp bounds, a
# scalar select predicate, runtime dynamic_slice indices, a reduce with a traced init.
HAND_WRITTEN = """
func.func @clamp(%lo: tensor<f32>, %x: tensor<5xf32>, %hi: tensor<f32>) -> tensor<5xf32> {
  %0 = stablehlo.clamp %lo, %x, %hi : (tensor<f32>, tensor<5xf32>, tensor<f32>) -> tensor<5xf32>
  return %0 : tensor<5xf32>
}
func.func @select(%s: tensor<f32>, %a: tensor<5xf32>, %b: tensor<5xf32>) -> tensor<5xf32> {
  %z = stablehlo.constant dense<0.0> : tensor<f32>
  %p = stablehlo.compare GT, %s, %z, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>
  %0 = stablehlo.select %p, %a, %b : (tensor<i1>, tensor<5xf32>, tensor<5xf32>) -> tensor<5xf32>
  %1 = stablehlo.multiply %0, %0 : tensor<5xf32>
  return %1 : tensor<5xf32>
}
func.func @dslice(%f: tensor<f32>, %x: tensor<6x4xf32>) -> tensor<3x4xf32> {
  %i = stablehlo.convert %f : (tensor<f32>) -> tensor<i32>
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %0 = stablehlo.dynamic_slice %x, %i, %c0, sizes = [3, 4] : (tensor<6x4xf32>, tensor<i32>, tensor<i32>) -> tensor<3x4xf32>
  %1 = stablehlo.tanh %0 : tensor<3x4xf32>
  return %1 : tensor<3x4xf32>
}
func.func @reduce_init(%s: tensor<f32>, %x: tensor<3x4xf32>) -> tensor<3xf32> {
  %0 = stablehlo.reduce(%x init: %s) applies stablehlo.add across dimensions = [1] : (tensor<3x4xf32>, tensor<f32>) -> tensor<3xf32>
  %1 = stablehlo.multiply %0, %0 : tensor<3xf32>
  return %1 : tensor<3xf32>
}
"""

HAND_WRITTEN_REFERENCES = {
    "clamp": lambda lo, x, hi: jnp.minimum(jnp.maximum(x, lo), hi),
    "select": lambda s, a, b: jnp.where(s > 0, a, b) ** 2,
    "dslice": lambda f, x: jnp.tanh(jax.lax.dynamic_slice(x, (f.astype(jnp.int32), 0), (3, 4))),
    "reduce_init": lambda s, x: (jnp.sum(x, axis=1) + s) ** 2,
}


def test_hand_written_stablehlo_matches_jax():
    from iree.compiler import ir

    from tracec.passes.ir.module import functions

    with ir.Context() as ctx:
        ctx.allow_unregistered_dialects = True
        text = mlir_to_generic(ir.Module.parse(HAND_WRITTEN))
    module = import_text(text, source_file=None, source_name="hand_written")
    names = sorted(HAND_WRITTEN_REFERENCES)
    run_pipeline(module, ",".join(f"differentiate{{mode={m} func={n}}}"
                                  for n in names for m in ("forward", "reverse")))
    types = {n: functions(module)[n].function_type for n in names}
    loaded = compile_iree(merge([module], {f"{n}_{s}" for n in names for s in ("jvp", "vjp")}))
    rng = np.random.default_rng(3)
    for name in names:
        ins = [rng.uniform(-1, 1, t.get_shape()).astype(np.float32) for t in types[name].inputs]
        if name == "dslice":
            ins[0] = np.float32(2.5)
        if name == "clamp":
            ins[0], ins[2] = np.float32(-0.3), np.float32(0.4)
        ins = [np.asarray(a, np.float32) for a in ins]
        ts = [rng.normal(size=a.shape).astype(np.float32) for a in ins]
        ref = HAND_WRITTEN_REFERENCES[name]
        outs, touts = jax.jvp(ref, tuple(ins), tuple(ts))
        got = call(loaded, f"p0_{name}_jvp", ins + ts)
        for g, w in zip(got, [outs, touts]):
            assert mismatch(g, w) is None, (name, mismatch(g, w))
        ct = rng.normal(size=np.shape(outs)).astype(np.float32)
        _, pullback = jax.vjp(ref, *ins)
        want = [np.asarray(w) for w in pullback(ct)]
        if name == "dslice":
            want[0] = np.zeros((), np.float32)  # an index has no derivative (JAX: float0)
        got = call(loaded, f"p0_{name}_vjp", ins + [ct])
        for g, w in zip(got[1:], want):
            assert mismatch(g, w) is None, (name, mismatch(g, w))


# ---------------------------------------------------------------------------------
# Targeted: gather/scatter in the forms JAX emits, windows (pooling, cumulative ops),
# argmax, integer ops, runtime slice indices. Each case is (name, fn, args): ``fn`` is
# lowered for tracec and is JAX's reference too, unless it is a pair (tracec's, JAX's);
# integer arguments are indices (no tangent; JAX's float0). Where JAX has no reverse
# mode (a product window), tracec's vjp is checked against JAX's jvp by
# <c, J t> = <Jᵀ c, t>.

_RNG = np.random.default_rng(11)


def _f(*shape):
    return _RNG.normal(size=shape).astype(np.float32)


def _i(*values):
    return np.array(values, np.int32)


def _pool(fn, init, window, strides, padding, base=None, wdil=None):
    return lambda x: jax.lax.reduce_window(x, init, fn, window, strides, padding,
                                           base_dilation=base, window_dilation=wdil)


def _gather(dims, sizes):
    return lambda x, k: jax.lax.gather(x, k, dims, sizes, mode="promise_in_bounds")


_GD = jax.lax.GatherDimensionNumbers


def _maxpool_vjp(x, s):  # what a user writes who differentiates a max pool: select_and_scatter
    return jax.vjp(_pool(jax.lax.max, -jnp.inf, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"), x)[1](s)[0]


def _minpool_vjp(x, s):
    return jax.vjp(_pool(jax.lax.min, jnp.inf, (3, 2), (3, 2), "VALID"), x)[1](s)[0]


def _argmax_value(x):
    """A two-input reduce over (values, iota) whose value result is used (JAX cannot
    differentiate it: the reference is jnp.max)."""
    iota = jax.lax.broadcasted_iota(jnp.int32, x.shape, 1)

    def pick(a, b):
        (va, ia), (vb, ib) = a, b
        first = (va > vb) | ((va == vb) & (ia < ib))
        return jnp.where(first, va, vb), jnp.where(first, ia, ib)

    v, i = jax.lax.reduce((x, iota), (jnp.float32(-jnp.inf), jnp.int32(0)), pick, (1,))
    return v * 2.0, i


def _int_index(x, i):
    """An index computed by integer ops from a float value and an integer input."""
    bits = jax.lax.bitcast_convert_type(x[0], jnp.int32)
    k = ((((bits >> 3) & 7) | 1) ^ 2) + jax.lax.population_count(i) + jax.lax.clz(i)
    k = k + (jnp.bitwise_not(i) & 1) + jax.lax.shift_left(i, 1) + jax.lax.shift_right_logical(i, 1)
    k = k + (x[1] * 3).astype(jnp.int32) % 2 + jnp.argsort(x)
    return x[(k & 0x7fff) % 6] * 2.0


_ZEROS = _f(3, 6)
_ZEROS[0, 2] = _ZEROS[1, 0] = _ZEROS[1, 4] = 0.0  # a product's derivative where x = 0

GATHER_SCATTER_CASES = [
    ("take_along_axis", lambda l, y: jnp.take_along_axis(l, y[:, None], axis=-1), [_f(4, 5), _i(0, 4, 2, 4)]),
    ("take_along_axis_0", lambda l, y: jnp.take_along_axis(l, y, axis=0),
     [_f(3, 4, 2), _RNG.integers(0, 3, (2, 4, 2)).astype(np.int32)]),
    ("arange_pairs", lambda l, y: l[jnp.arange(4), y], [_f(4, 5), _i(0, 4, 2, 4)]),
    ("embedding", lambda e, k: e[k], [_f(10, 3), _i(1, 9, 1, -2)]),
    ("take_2d_indices", lambda e, k: jnp.take(e, k, axis=0), [_f(10, 3), _i(1, 2, 3, 9, 0, 0).reshape(3, 2)]),
    ("columns", lambda x, k: x[:, k], [_f(3, 10), _i(1, 9, 1, 3)]),
    ("take_middle_axis", lambda x, k: jnp.take(x, k, axis=1), [_f(3, 5, 2), _i(4, 0, 2)]),
    ("scalar_index", lambda x, k: x[k] * x[k], [_f(5, 2), np.int32(3)]),
    ("at_add", lambda x, k, u: x.at[k].add(u), [_f(10, 3), _i(1, 9, 1, -2), _f(4, 3)]),
    ("at_add_columns", lambda x, k, u: x.at[:, k].add(u * u), [_f(3, 6), _i(5, 0, 5), _f(3, 3)]),
    ("at_add_two_indices", lambda x, a, b, u: x.at[a, b].add(u), [_f(4, 5, 2), _i(1, 3, 1), _i(0, 4, 0), _f(3, 2)]),
    ("segment_sum", lambda u, k: jax.ops.segment_sum(u, k, num_segments=6), [_f(5, 3), _i(0, 5, 2, 2, 1)]),
    ("at_set", lambda x, k, u: x.at[k].set(u), [_f(10, 3), _i(1, 9, 4, -2), _f(4, 3)]),
    ("at_set_repeated", lambda x, k, u: x.at[k].set(u), [_f(10, 3), _i(1, 9, 1, 1), _f(4, 3)]),
    ("at_set_columns", lambda x, k, u: x.at[:, k].set(u), [_f(3, 10), _i(1, 9, 1, 4), _f(3, 4)]),
    ("put_along_axis", lambda x, k, u: jnp.put_along_axis(x, k, u, axis=1, inplace=False),
     [_f(3, 5), _i(1, 4, 0).reshape(3, 1), _f(3, 1)]),
    # general gathers: windows along indexed dimensions, partial windows, index order
    ("gather_window_2x5", _gather(_GD(offset_dims=(1, 2), collapsed_slice_dims=(), start_index_map=(0,)), (2, 5)),
     [_f(6, 5), _i(0, 4, 3).reshape(3, 1)]),
    ("gather_window_1x1", _gather(_GD(offset_dims=(1, 2), collapsed_slice_dims=(), start_index_map=(0, 1)), (1, 1)),
     [_f(6, 5), _i(0, 0, 4, 3, 5, 4).reshape(3, 2)]),
    ("gather_window_1x3", _gather(_GD(offset_dims=(1,), collapsed_slice_dims=(0,), start_index_map=(0, 1)), (1, 3)),
     [_f(6, 5), _i(0, 0, 4, 2, 5, 1).reshape(3, 2)]),
    ("gather_window_first", _gather(_GD(offset_dims=(0, 2), collapsed_slice_dims=(), start_index_map=(1,)), (6, 2)),
     [_f(6, 5), _i(0, 3, 2).reshape(3, 1)]),
    ("gather_partial", _gather(_GD(offset_dims=(1,), collapsed_slice_dims=(0,), start_index_map=(0,)), (1, 3)),
     [_f(6, 5), _i(0, 4, 5).reshape(3, 1)]),
    ("gather_3d", _gather(_GD(offset_dims=(0, 3), collapsed_slice_dims=(1,), start_index_map=(2, 1)), (2, 1, 3)),
     [_f(3, 6, 5), _i(0, 0, 2, 3, 1, 4, 1, 5).reshape(2, 2, 2)]),
    ("gather_batching", _gather(_GD(offset_dims=(2,), collapsed_slice_dims=(1,), start_index_map=(1,),
                                    operand_batching_dims=(0,), start_indices_batching_dims=(0,)), (1, 1, 2)),
     [_f(3, 5, 2), _i(4, 0, 1, 1, 3, 2).reshape(3, 2, 1)]),
]

WINDOW_CASES = [
    ("avg_pool", _pool(jax.lax.add, 0.0, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"), [_f(2, 6, 6, 3)]),
    ("sum_pool_same", _pool(jax.lax.add, 0.0, (3, 3), (1, 1), "SAME"), [_f(5, 6)]),
    ("sum_pool_dilated", _pool(jax.lax.add, 0.0, (2, 2), (1, 2), [(1, 0), (0, 1)], (2, 1), (1, 2)), [_f(5, 6)]),
    ("sum_pool_wide_padding", _pool(jax.lax.add, 0.0, (2,), (2,), [(3, 2)]), [_f(7)]),
    ("cumsum", lambda x: jnp.cumsum(x, axis=1), [_f(4, 5)]),
    ("cumsum_reverse", lambda x: jax.lax.cumsum(x, axis=0, reverse=True), [_f(4, 5, 2)]),
    ("max_pool", _pool(jax.lax.max, -jnp.inf, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"), [_f(2, 6, 6, 3)]),
    ("max_pool_same", _pool(jax.lax.max, -jnp.inf, (3, 3), (2, 1), "SAME"), [_f(5, 6)]),
    ("max_pool_base_dilated", _pool(jax.lax.max, -jnp.inf, (2, 2), (1, 1), [(0, 0), (1, 1)], (2, 1)), [_f(4, 5)]),
    ("max_pool_window_dilated", _pool(jax.lax.max, -jnp.inf, (2, 2), (1, 1), "VALID", None, (2, 1)), [_f(4, 5)]),
    ("min_pool", _pool(jax.lax.min, jnp.inf, (2, 3), (2, 1), [(1, 1), (0, 2)]), [_f(5, 6)]),
    ("cummax", lambda x: jax.lax.cummax(x, axis=1), [_f(3, 6)]),
    ("cummin_reverse", lambda x: jax.lax.cummin(x, axis=0, reverse=True), [_f(5, 3)]),
    ("cumprod", lambda x: jnp.cumprod(x, axis=1), [_ZEROS]),
    ("cumprod_reverse", lambda x: jax.lax.cumprod(x, axis=1, reverse=True), [_ZEROS]),
    ("cumprod_3d", lambda x: jnp.cumprod(x, axis=0), [_f(4, 2, 3)]),
    ("product_window", _pool(jax.lax.mul, 1.0, (1, 3), (1, 2), [(0, 0), (1, 1)]), [_ZEROS]),
    ("select_and_scatter_max", _maxpool_vjp, [_f(2, 6, 6, 3), _f(2, 3, 3, 3)]),
    ("select_and_scatter_min", _minpool_vjp, [_f(6, 4), _f(2, 2)]),
]

INDEX_CASES = [
    ("argmax_index", lambda a, b: jnp.take_along_axis(a, jnp.argmax(b, axis=1, keepdims=True), axis=1),
     [_f(4, 5), _f(4, 5)]),
    ("argmin_index", lambda a, b: jnp.take_along_axis(a, jnp.argmin(a + b, axis=0)[None], axis=0),
     [_f(4, 5), _f(4, 5)]),
    ("argmax_value", (_argmax_value, lambda x: (jnp.max(x, axis=1) * 2.0, jnp.argmax(x, axis=1))),
     [_f(4, 5)]),
    ("integer_ops", _int_index, [_f(6), _i(3, 1, 2, 4, 0, 5)]),
    ("fmod", lambda x, y: jnp.fmod(x, y * y + 0.5), [_f(3, 4), _f(3, 4)]),
    ("mod", lambda x, y: jnp.mod(x, y * y + 0.5), [_f(3, 4), _f(3, 4)]),
    ("dynamic_slice", lambda x, i, j: jax.lax.dynamic_slice(x, (i, j), (2, 3)) ** 2,
     [_f(5, 6), np.int32(2), np.int32(5)]),
    ("dynamic_slice_negative", lambda x, i, j: jax.lax.dynamic_slice(x, (i, j), (2, 3)) ** 2,
     [_f(5, 6), np.int32(-1), np.int32(1)]),
    ("dynamic_slice_computed", lambda x: jax.lax.dynamic_slice(
        x, ((jnp.abs(x[0, 0]) * 4).astype(jnp.int32), 1), (2, 3)) * x[1:3, :3], [_f(5, 6)]),
    ("dynamic_update_slice", lambda x, u, i, j: jax.lax.dynamic_update_slice(x, u * u, (i, j)),
     [_f(5, 6), _f(2, 3), np.int32(4), np.int32(1)]),
    ("dynamic_update_slice_computed", lambda x, u: jax.lax.dynamic_update_slice(
        x, u * x[:2, :3], ((jnp.abs(u[0, 0]) * 5).astype(jnp.int32), 2)), [_f(5, 6), _f(2, 3)]),
]


def _is_float(a) -> bool:
    return np.issubdtype(np.asarray(a).dtype, np.floating)


def _host(values) -> list:
    values = values if isinstance(values, (tuple, list)) else [values]
    return [np.asarray(v.to_host() if hasattr(v, "to_host") else v) for v in values]


def _check_cases(cases) -> list[str]:
    """Lower, differentiate, compile (one IREE module) and run every case; returns the
    differences from JAX."""
    modules = []
    for name, fn, args in cases:
        fn = fn[0] if isinstance(fn, tuple) else fn
        specs = [jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype) for a in args]
        m = lower(fn, specs, name)
        run_pipeline(m, "inline-private-functions,differentiate{mode=forward func=main},"
                        "differentiate{mode=reverse func=main}")
        modules.append(m)
    loaded = compile_iree(merge(modules, {"main_jvp", "main_vjp"}))
    rng = np.random.default_rng(5)
    problems = []
    for k, (name, fn, args) in enumerate(cases):
        ref = fn[1] if isinstance(fn, tuple) else fn
        args = [np.asarray(a) for a in args]
        floats = [_is_float(a) for a in args]
        ts = [rng.normal(size=a.shape).astype(a.dtype) if f else np.zeros_like(a)
              for a, f in zip(args, floats)]

        def on_floats(*xs, ref=ref, args=args, floats=floats):
            it = iter(xs)
            return ref(*[next(it) if f else a for a, f in zip(args, floats)])

        xs = [a for a, f in zip(args, floats) if f]
        outs, touts = jax.jvp(on_floats, tuple(xs), tuple(t for t, f in zip(ts, floats) if f))
        single = not isinstance(outs, tuple)
        outs, touts = ((outs,), (touts,)) if single else (outs, touts)
        n = len(outs)
        got = _host(getattr(loaded, f"p{k}_main_jvp")(*args, *ts))
        for j, (g, w) in enumerate(zip(got, list(outs) + list(touts))):
            if _is_float(w) and mismatch(g, w):
                problems.append(f"{name}: forward, {'output' if j < n else 'tangent'} {j % n}: "
                                f"{mismatch(g, w)}")
        cts = [rng.normal(size=np.shape(o)).astype(np.float32) if _is_float(o)
               else np.zeros(np.shape(o), np.asarray(o).dtype) for o in outs]
        got = _host(getattr(loaded, f"p{k}_main_vjp")(*args, *cts))[n:]
        got_floats = [g for g, f in zip(got, floats) if f]
        try:
            _, pullback = jax.vjp(on_floats, *xs)
            want = pullback(cts[0] if single else tuple(cts))
        except Exception:  # no reverse mode in JAX: <c, J t> = <Jᵀ c, t>
            lhs = sum(float(np.vdot(c.astype(np.float64), np.asarray(t, np.float64)))
                      for c, t in zip(cts, touts) if _is_float(t))
            rhs = sum(float(np.vdot(g.astype(np.float64), t.astype(np.float64)))
                      for g, t, f in zip(got, ts, floats) if f)
            if abs(lhs - rhs) > 1e-5 * max(1.0, abs(lhs)):
                problems.append(f"{name}: reverse, <c, J t> = {lhs} but <Jᵀ c, t> = {rhs}")
            continue
        for j, (g, w) in enumerate(zip(got_floats, want)):
            if mismatch(g, w):
                problems.append(f"{name}: reverse, cotangent {j}: {mismatch(g, w)}")
    return problems


def test_gather_and_scatter_match_jax():
    """jnp.take_along_axis, integer-array indexing, embeddings, columns, general gathers;
    .at[].add/.set (repeated indices too), segment_sum. (Indices are in range: IREE
    3.13's gather does not clamp and its scatter does not drop, unlike StableHLO.)"""
    problems = _check_cases(GATHER_SCATTER_CASES)
    assert not problems, "\n".join(problems)


def test_windows_match_jax():
    """Sum/max/min pooling (padding, strides, dilations), cumsum, cumprod (zeros in the
    input), cummax/cummin, a product window, select_and_scatter (a max pool's vjp)."""
    problems = _check_cases(WINDOW_CASES)
    assert not problems, "\n".join(problems)


def test_indices_and_integer_ops_match_jax():
    """argmax/argmin indices and value, integer and bit ops on the way to an index
    (no derivative, no error), float remainder, slices at runtime indices."""
    problems = _check_cases(INDEX_CASES)
    assert not problems, "\n".join(problems)


# StableHLO JAX does not emit: a gather whose index vectors run along dimension 0 (and
# start indices out of range, which the gather clamps), a select_and_scatter whose
# initial value is an input.
HAND_WRITTEN_INDEXED = """
func.func @gather_ivd0(%x: tensor<6x5xf32>, %k: tensor<2x3xi32>) -> tensor<3xf32> {
  %0 = "stablehlo.gather"(%x, %k) <{dimension_numbers = #stablehlo.gather<collapsed_slice_dims = [0, 1], start_index_map = [1, 0], index_vector_dim = 0>, slice_sizes = array<i64: 1, 1>}> : (tensor<6x5xf32>, tensor<2x3xi32>) -> tensor<3xf32>
  %1 = stablehlo.multiply %0, %0 : tensor<3xf32>
  return %1 : tensor<3xf32>
}
func.func @sas_init(%x: tensor<4x6xf32>, %s: tensor<2x3xf32>, %i: tensor<f32>) -> tensor<4x6xf32> {
  %0 = "stablehlo.select_and_scatter"(%x, %s, %i) <{window_dimensions = array<i64: 2, 2>, window_strides = array<i64: 2, 2>}> ({
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %c = stablehlo.compare GE, %a, %b, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>
    stablehlo.return %c : tensor<i1>
  }, {
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %c = stablehlo.add %a, %b : tensor<f32>
    stablehlo.return %c : tensor<f32>
  }) : (tensor<4x6xf32>, tensor<2x3xf32>, tensor<f32>) -> tensor<4x6xf32>
  %1 = stablehlo.multiply %0, %0 : tensor<4x6xf32>
  return %1 : tensor<4x6xf32>
}
"""


def _sas_reference(x, s, i):
    pool = _pool(jax.lax.max, -jnp.inf, (2, 2), (2, 2), "VALID")
    return (jax.vjp(pool, x)[1](s)[0] + i) ** 2


def test_hand_written_gather_and_select_and_scatter_match_jax():
    from iree.compiler import ir

    with ir.Context() as ctx:
        ctx.allow_unregistered_dialects = True
        text = mlir_to_generic(ir.Module.parse(HAND_WRITTEN_INDEXED))
    module = import_text(text, source_file=None, source_name="hand_written")
    run_pipeline(module, ",".join(f"differentiate{{mode={m} func={n}}}" for n in ("gather_ivd0", "sas_init")
                                  for m in ("forward", "reverse")))
    loaded = compile_iree(merge([module], {f"{n}_{s}" for n in ("gather_ivd0", "sas_init")
                                           for s in ("jvp", "vjp")}))
    x, k = _f(6, 5), _i(1, 4, 9, 0, 5, -2).reshape(2, 3)  # 9 and -2 are clamped
    kc = np.stack([np.clip(k[0], 0, 4), np.clip(k[1], 0, 5)])
    ref = lambda x: x[kc[1], kc[0]] ** 2  # noqa: E731
    t, c = _f(6, 5), _f(3)
    out, tout = jax.jvp(ref, (x,), (t,))
    got = _host(loaded.p0_gather_ivd0_jvp(x, k, t, np.zeros_like(k)))
    assert mismatch(got[0], out) is None and mismatch(got[1], tout) is None, mismatch(got[1], tout)
    got = _host(loaded.p0_gather_ivd0_vjp(x, k, c))
    assert mismatch(got[1], jax.vjp(ref, x)[1](c)[0]) is None
    args = (_f(4, 6), _f(2, 3), np.float32(0.3))
    ts, c = (_f(4, 6), _f(2, 3), np.float32(-0.7)), _f(4, 6)
    out, tout = jax.jvp(_sas_reference, args, ts)
    got = _host(loaded.p0_sas_init_jvp(*args, *ts))
    assert mismatch(got[0], out) is None and mismatch(got[1], tout) is None, mismatch(got[1], tout)
    want = jax.vjp(_sas_reference, *args)[1](c)
    got = _host(loaded.p0_sas_init_vjp(*args, c))
    assert np.all(got[1] == 0.0)  # the selection has no derivative
    assert mismatch(got[2], want[1]) is None and mismatch(got[3], want[2]) is None


def test_refused_forms_name_the_op_and_what_to_do():
    from tracec.diagnostics import TracecError

    cases = {
        "stablehlo.scatter with a 'stablehlo.multiply' body": lambda x, k, u: x.at[k].multiply(u),
        "over more than one dimension": lambda x, k, u: jax.lax.reduce_window(
            x, 1.0, jax.lax.mul, (2, 2), (1, 1), "VALID") * u[0, 0],
    }
    specs = [jax.ShapeDtypeStruct((5, 3), jnp.float32), jax.ShapeDtypeStruct((2,), jnp.int32),
             jax.ShapeDtypeStruct((2, 3), jnp.float32)]
    for want, fn in cases.items():
        m = lower(fn, specs)
        with pytest.raises(TracecError) as e:
            run_pipeline(m, "differentiate{mode=reverse func=main}")
        assert want in str(e.value), str(e.value)


def test_every_rule_is_documented():
    """docs/passes.md, differentiate: each op of the rule table is listed."""
    from conftest import ROOT

    from tracec.passes.autodiff.rules import COMPOSITE_RULES, RULES

    text = open(os.path.join(ROOT, "docs", "passes.md")).read()
    section = text[text.index("## differentiate"):]
    for cls in RULES:
        name = cls.name.split(".", 1)[1]
        assert f"`{name}`" in section, f"{cls.name} has a rule but docs/passes.md does not list it"
    for name in COMPOSITE_RULES:
        assert f"`composite` `{name}`" in section, f"composite {name} is not in docs/passes.md"


def test_structured_attributes_round_trip():
    """#stablehlo.gather/scatter/dot: read and built by one helper, no parser involved."""
    from xdsl.parser import Parser

    from tracec.dialects import make_context
    from tracec.dialects import stablehlo as shlo

    text = ("offset_dims = [1], collapsed_slice_dims = [0], operand_batching_dims = [2], "
            "start_indices_batching_dims = [0], start_index_map = [0], index_vector_dim = 1")
    parsed = Parser(make_context(), f"#stablehlo.gather<{text}>").parse_attribute()
    fields = shlo.struct_fields(parsed)
    assert fields == {"offset_dims": [1], "collapsed_slice_dims": [0], "operand_batching_dims": [2],
                      "start_indices_batching_dims": [0], "start_index_map": [0], "index_vector_dim": 1}
    built = shlo.struct_attr("stablehlo.gather", fields)
    assert str(built) == str(parsed) == f"#stablehlo.gather<{text}>"
    empty = shlo.struct_attr("stablehlo.dot", {"lhs_contracting_dimensions": [],
                                               "rhs_contracting_dimensions": []})
    assert str(empty) == "#stablehlo.dot<lhs_contracting_dimensions = [], rhs_contracting_dimensions = []>"
