"""IR import/export: hex floats, locations, round trips through IREE's and jaxlib's parsers."""

from __future__ import annotations

import math
import struct

import numpy as np

from tracec.frontends.stablehlo_io import (
    fix_hex_float_literals,
    normalize_locations,
    parse_generic,
    print_generic,
)
from tracec.dialects import stablehlo as shlo


def _const_values(module):
    out = []
    for op in module.walk():
        if isinstance(op, shlo.ConstantOp):
            out.append(np.frombuffer(op.value.data.data, np.float32).copy())
    return out


GENERIC = '''"builtin.module"() ({
  "func.func"() <{function_type = () -> (tensor<f32>, tensor<3xf32>, tensor<2xf32>), sym_name = "main"}> ({
    %0 = "stablehlo.constant"() <{value = dense<0xFF800000> : tensor<f32>}> : () -> tensor<f32>
    %1 = "stablehlo.constant"() <{value = dense<[0x7FC00000, 1.500000e+00, 0x7F800000]> : tensor<3xf32>}> : () -> tensor<3xf32>
    %2 = "stablehlo.constant"() <{value = dense<0x3F800001> : tensor<2xf32>}> : () -> tensor<2xf32>
    "func.return"(%0, %1, %2) : (tensor<f32>, tensor<3xf32>, tensor<2xf32>) -> ()
  }) : () -> ()
}) : () -> ()
'''


def test_hex_float_splat_and_list_are_bit_patterns():
    """Regression: xDSL reads dense<0xFF800000> as the integer 4286578688 (docs/design.md 4)."""
    module = parse_generic(GENERIC)
    neg_inf, mixed, ulp = _const_values(module)
    assert neg_inf.shape == (1,) and neg_inf[0] == -math.inf
    assert math.isnan(mixed[0]) and mixed[1] == 1.5 and mixed[2] == math.inf
    expected = struct.unpack("<f", struct.pack("<I", 0x3F800001))[0]
    assert list(ulp) == [expected, expected]


def test_unfixed_xdsl_would_be_wrong():
    """The bug this guards against is real in the pinned xDSL (if fixed upstream, drop the fix)."""
    from xdsl.parser import Parser

    from tracec.dialects import make_context

    module = Parser(make_context(), GENERIC).parse_module()
    assert _const_values(module)[0][0] != -math.inf


def test_hex_fix_leaves_integer_tensors_alone():
    text = 'dense<0xFF> : tensor<i32>'
    assert fix_hex_float_literals(text) == text


def test_printed_constants_reparse_in_jaxlib_and_iree():
    from iree.compiler import ir as iree_ir
    from jax._src.interpreters import mlir as jax_mlir
    from jaxlib.mlir import ir as jax_ir

    text = print_generic(parse_generic(GENERIC))
    with jax_mlir.make_ir_context():
        jax_ir.Module.parse(text)
    with iree_ir.Context() as ctx:
        ctx.allow_unregistered_dialects = True
        m = iree_ir.Module.parse(text)
        assert "dense<0xFF800000>" in str(m)


def test_locations_pick_the_users_frame():
    text = ('%0 = "stablehlo.add"(%a, %b) : () -> () loc("jit(step)/add"(callsite('
            '"step"("/x/model.py":12:8 to :20) at callsite("<module>"("/x/run.py":3:0 to :5) '
            'at "f"("/usr/lib/python3.11/site-packages/jax/core.py":1:1)))))')
    out = normalize_locations(text, prefer_file="/x/model.py")
    assert out.endswith('loc("/x/model.py":12:8)')
    out2 = normalize_locations(text, prefer_file=None)
    assert out2.endswith('loc("/x/model.py":12:8)')
    # A frame outside the model's folder (the caller's script) is not the model's line.
    assert normalize_locations(text, prefer_file="/y/other.py").endswith("loc(unknown)")
    lib_only = 'x loc("f"("/usr/lib/python3.11/site-packages/jax/a.py":1:1))'
    assert normalize_locations(lib_only).endswith("loc(unknown)")
