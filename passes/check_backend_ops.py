"""check-backend-ops: reject ops the chosen backend cannot compile, naming the user's line.

IREE cannot compile JAX's host-specific ``stablehlo.custom_call`` targets (LAPACK
kernels for ``jnp.linalg``, ``cu_*`` GPU kernels); left alone, they make
``iree-compile`` fail with a message about IREE's internals. A host callback
(``jax.pure_callback``, ``io_callback``, ``jax.debug.print``) calls back into the Python
process that traced the model, which no artifact has: on every target, XLA included,
it would fail or crash at run time. This pass turns both into a tracec error pointing
at the model's line, with what to do.

Options: ``target`` (``llvm-cpu``, ``vmvx``, ``cuda``, ``rocm``, ``vulkan``, ``xla``).
Before: StableHLO. After: unchanged IR (analysis only), or an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from tracec.dialects.stablehlo import CustomCallOp
from tracec.passes.ir.module import op_error, op_name

# Ops (by name) that no IREE target compiles, with the reason to give the user.
_IREE_UNSUPPORTED = {
    "stablehlo.rng": "random number generation inside the step",
    "stablehlo.infeed": "host infeed",
    "stablehlo.outfeed": "host outfeed",
    "stablehlo.send": "host send",
    "stablehlo.recv": "host receive",
}


@dataclass(frozen=True)
class CheckBackendOpsPass(ModulePass):
    name = "check-backend-ops"

    target: str = "llvm-cpu"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for inner in op.walk():
            if isinstance(inner, CustomCallOp) and "callback" in inner.call_target_name.data:
                raise op_error(inner, f"the {self.target} target cannot compile a host callback "
                                      f"(custom call '{inner.call_target_name.data}' from "
                                      "jax.pure_callback, io_callback or jax.debug.print/callback): "
                                      "it calls back into this Python process, which a compiled "
                                      "artifact does not have",
                               hint="compute it with jax array ops in the step, or pass its "
                                    "values in as inputs")
        if self.target == "xla":
            return  # XLA compiles whatever else JAX produced on this host.
        for inner in op.walk():
            if isinstance(inner, CustomCallOp):
                target = inner.call_target_name.data
                raise op_error(
                    inner,
                    f"the {self.target} backend cannot compile custom call '{target}'",
                    hint="this usually comes from a jnp.linalg/jax.scipy routine in the step; "
                         "rewrite it with basic array ops, or compile with --target xla")
            if op_name(inner) in _IREE_UNSUPPORTED:
                raise op_error(inner, f"the {self.target} backend cannot compile "
                                      f"{_IREE_UNSUPPORTED[op_name(inner)]}",
                               hint="pass random numbers in as inputs instead")
