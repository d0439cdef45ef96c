"""tracec's typed StableHLO ops read and print back exactly what JAX emits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import tracec
from tracec.dialects import stablehlo as shlo
from tracec.frontends.stablehlo_io import import_text, mlir_to_generic, print_generic

X = jax.ShapeDtypeStruct((4, 6), jnp.float32)
W = jax.ShapeDtypeStruct((6, 5), jnp.float32)
IMG = jax.ShapeDtypeStruct((2, 3, 8, 8), jnp.float32)
KER = jax.ShapeDtypeStruct((4, 3, 3, 3), jnp.float32)

PROGRAMS = {
    "unary": (lambda x: (jnp.abs(x), -x, jnp.exp(x), jnp.log(x), jnp.log1p(x), jnp.expm1(x),
                         jnp.tanh(x), jax.nn.sigmoid(x), jnp.sqrt(x), jax.lax.rsqrt(x),
                         jnp.sign(x), jnp.floor(x), jnp.round(x), jnp.sin(x), jnp.cos(x)), (X,)),
    "binary": (lambda x, y: (x + y, x - y, x * y, x / y, x ** y, jnp.maximum(x, y),
                             jnp.minimum(x, y), jnp.where(x > y, x, y), jnp.clip(x, -1.0, 1.0)),
               (X, X)),
    "shape": (lambda x: (x.T, x[1:3, ::2], jnp.pad(x, ((1, 0), (0, 2))), x.reshape(6, 4),
                         jnp.concatenate([x, x], 0), jnp.broadcast_to(x[None], (3, 4, 6)),
                         jnp.sum(x, 0), jnp.max(x, 1), jnp.min(x), jnp.flip(x, 0),
                         jnp.arange(6.0) * x), (X,)),
    "dot": (lambda x, w: (x @ w, jnp.einsum("bi,io->ob", x, w)), (X, W)),
    "conv": (lambda i, k: jax.lax.conv_general_dilated(i, k, (1, 1), "SAME"), (IMG, KER)),
    "dynamic": (lambda x: jax.lax.dynamic_slice(x, (1, 2), (2, 2)), (X,)),
    "spike": (lambda x: (tracec.spike(x, "arctan", 2.0), tracec.stop_gradient(x)), (X,)),
    "scan": (lambda x: jax.lax.scan(lambda c, r: (c + r, c * r), jnp.zeros(6), x), (X,)),
}


def _canonical(text: str) -> str:
    """MLIR's own pretty print without locations: equal text means equal IR."""
    from iree.compiler import ir

    with ir.Context() as ctx:
        ctx.allow_unregistered_dialects = True
        module = ir.Module.parse(text)
        return module.operation.get_asm(enable_debug_info=False)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_round_trip_through_xdsl_is_exact(name):
    fn, specs = PROGRAMS[name]
    generic = mlir_to_generic(jax.jit(fn).lower(*specs).compiler_ir("stablehlo"))
    module = import_text(generic, source_file=None, source_name=name)
    module.verify()
    assert _canonical(print_generic(module)) == _canonical(generic)


def test_ops_are_typed():
    fn, specs = PROGRAMS["dot"]
    generic = mlir_to_generic(jax.jit(fn).lower(*specs).compiler_ir("stablehlo"))
    module = import_text(generic, source_file=None, source_name="dot")
    kinds = {type(op) for op in module.walk()}
    assert shlo.DotGeneralOp in kinds
    scan_generic = mlir_to_generic(jax.jit(PROGRAMS["scan"][0]).lower(X).compiler_ir("stablehlo"))
    kinds = {type(op) for op in import_text(scan_generic, source_file=None, source_name="s").walk()}
    assert shlo.WhileOp in kinds and shlo.DynamicUpdateSliceOp in kinds
