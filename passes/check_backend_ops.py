"""check-backend-ops: reject ops the chosen backend cannot compile, naming the user's line.

IREE cannot compile JAX's host-specific ``stablehlo.custom_call`` targets (LAPACK
kernels for ``jnp.linalg``, ``cu_*`` GPU kernels, callbacks); left alone, they make
``iree-compile`` fail with a message about IREE's internals. This pass turns them
into a tracec error pointing at the model's line, with what to do.

Options: ``target`` (``llvm-cpu``, ``vmvx``, ``cuda``, ``rocm``, ``vulkan``, ``xla``).
Before: StableHLO. After: unchanged IR (analysis only), or an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from tracec.dialects.stablehlo import CustomCallOp
from tracec.passes.common import op_error, op_name

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
        if self.target == "xla":
            return  # XLA compiles whatever JAX produced on this host.
        for inner in op.walk():
            if isinstance(inner, CustomCallOp):
                target = inner.call_target_name.data
                raise op_error(
                    inner,
                    f"the {self.target} backend cannot compile custom call '{target}'",
                    hint="this usually comes from a jnp.linalg/jax.scipy routine or a host "
                         "callback in the step; rewrite it with basic array ops, or compile "
                         "with --target xla")
            if op_name(inner) in _IREE_UNSUPPORTED:
                raise op_error(inner, f"the {self.target} backend cannot compile "
                                      f"{_IREE_UNSUPPORTED[op_name(inner)]}",
                               hint="pass random numbers in as inputs instead")
