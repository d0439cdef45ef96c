"""Compile options, validated once, in one place, with messages that say what to do.

A message names the option both ways, as ``tracec.compile(..., lr=...)`` spells it and
as the command line does: ``lr (--lr) must be ...``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from tracec.diagnostics import TracecError

ALGORITHMS = ("forward", "d-rtrl", "es-d-rtrl")
OPTIMIZERS = ("sgd", "adam")
# Targets and how each is compiled: IREE's backends, or XLA through jax.export.
TARGETS = ("llvm-cpu", "vmvx", "cuda", "rocm", "vulkan", "xla")
EVENT_MODES = ("auto", "always", "never")
STAGES = ("stablehlo", "tracec", "iree-input", "xla-input", "vmfb", "xla")
# Quiet windows (lower-scan-to-iree) pay where the updates are at least this many unrolled
# loop iterations apart: up to one iteration of steps around each update runs one step at a
# time, and a single step costs more than quiet iterations save when updates come often.
QUIET_ITERATIONS = 8
#: Accumulate D-RTRL's dense weight gradients per batch row where updates are windowed
#: (CompileOptions.row_gradients). Off: on llvm-cpu the per-row accumulator's extra
#: read and write each step costs more than the contraction it saves
#: (benchmarks/results/row_gradients_ab.md, which sets it to measure both forms).
ROW_GRADIENTS = False
#: Carry D-RTRL's dense weight traces over the unrolled steps of a window without an
#: update in one pass (window-param-traces; CompileOptions.window_traces): 3.4-3.6x
#: faster steps on lif_v 2x256, 1.1-1.3x on 2x64 (benchmarks/results/window_traces_ab.md,
#: which sets it to measure both forms).
WINDOW_TRACES = True
#: The smallest trace (bytes) carried over windows: smaller ones stay in cache, and their
#: window would cost the module IREE's aggressive fusion for little.
WINDOW_MIN_BYTES = 256 * 1024


@dataclass(frozen=True)
class CompileOptions:
    # forward only, or one of the online learning rules (docs/design.md §3)
    algorithm: str = "forward"
    decay: float = 0.9
    optimizer: str = "sgd"
    lr: float = 1e-3
    update_every: int = 1
    # Also compile advance_step/advance_sequence, the training entries' steps for a mask
    # of 0 without the gradient; the runtime runs the steps a mask leaves out through them.
    skip_masked_steps: bool = False
    # Data parallelism over the batch: the step is compiled for B / N rows and the
    # runtime runs N such parts side by side (threads), summing or averaging their
    # accumulated gradients once per update window and applying the optimizer to the
    # result (the entry apply_update); the training entries then only accumulate.
    batch_shards: int = 1
    # IREE: time steps per iteration of the loop of forward_sequence/train_sequence
    # (each iteration pays a fixed host cost; 4 measured ~25% faster than 1 for ES-D-RTRL).
    # None (the default): 8 for forward-only artifacts and for a learning rule whose
    # updates are at least QUIET_ITERATIONS iterations of 8 steps apart (so that quiet
    # windows apply), else 4.
    scan_unroll: int | None = None
    # IREE: let the unrolled steps fuse with each other (~17% faster sequences on lif2,
    # forward and ES-D-RTRL; for training about twice the IREE compile time); off, every
    # unrolled step reuses the one-step body's kernels. None (the default): on for
    # forward-only artifacts (a few seconds of compile at most); for a learning rule it
    # stays None, "auto": on where quiet windows apply, and off where IREE's aggressive
    # fusion then fails on the module (tracec.driver), else off.
    fuse_steps: bool | None = None
    # IREE: relations fed by spikes (z @ W) do work over the nonzero entries only, with
    # a dense fallback at run time; "auto" on llvm-cpu where N >= 1024 and the H outputs
    # are many (where it was measured to win), "always", or "never". event_capacity:
    # the nonzero entries per batch row the event-driven form holds, as a fraction of N
    # (passes/event_driven_relations.py).
    event_driven: str = "auto"
    event_capacity: float = 0.02
    target: str = "llvm-cpu"
    seed: int = 0
    # llvm-cpu: "host" (fastest, this CPU only) or an LLVM CPU name / "generic".
    cpu: str = "host"
    # cross-compilation for llvm-cpu, e.g. "aarch64-linux-gnu", "riscv64-linux-gnu".
    target_triple: str = ""
    cuda_arch: str = "sm_80"
    rocm_arch: str = "gfx942"
    # vulkan: IREE's target preset. The portable baseline runs on any conformant device
    # (checked on lavapipe); a GPU preset (ampere, rdna3, valhall, ...) is faster on that
    # GPU and computes wrong results on devices without its subgroup features.
    vulkan_target: str = "vp_android_baseline_2022"

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise TracecError(f"unknown algorithm (--algorithm) '{self.algorithm}'",
                              hint=f"choose one of {', '.join(ALGORITHMS)}")
        if self.optimizer not in OPTIMIZERS:
            raise TracecError(f"unknown optimizer (--optimizer) '{self.optimizer}'",
                              hint=f"choose one of {', '.join(OPTIMIZERS)}")
        if self.target not in TARGETS:
            raise TracecError(f"unknown target (--target) '{self.target}'",
                              hint=f"choose one of {', '.join(TARGETS)}")
        if not isinstance(self.decay, (int, float)) or not (0.0 <= self.decay < 1.0):
            raise TracecError(f"decay (--decay) must be in [0, 1), got {self.decay!r}",
                              hint="the ES-D-RTRL trace decay α is a number like 0.9")
        if (not isinstance(self.lr, (int, float)) or isinstance(self.lr, bool)
                or not math.isfinite(self.lr) or self.lr <= 0):
            raise TracecError(f"lr (--lr) must be a positive finite number, got {self.lr!r}")
        if not isinstance(self.update_every, int) or self.update_every < 1:
            raise TracecError("update_every (--update-every) must be an integer >= 1, "
                              f"got {self.update_every!r}")
        if not isinstance(self.skip_masked_steps, bool):
            raise TracecError("skip_masked_steps (--skip-masked-steps) must be True or False, "
                              f"got {self.skip_masked_steps!r}")
        if self.skip_masked_steps and self.algorithm == "forward":
            raise TracecError("skip_masked_steps (--skip-masked-steps) needs a learning rule",
                              hint="add --algorithm es-d-rtrl or d-rtrl; a forward-only "
                                   "artifact has no mask")
        if (not isinstance(self.batch_shards, int) or isinstance(self.batch_shards, bool)
                or self.batch_shards < 1):
            raise TracecError("batch_shards (--batch-shards) must be an integer >= 1, "
                              f"got {self.batch_shards!r}")
        if self.batch_shards > 1 and self.target == "xla":
            raise TracecError("batch_shards (--batch-shards) needs an IREE target",
                              hint="XLA spreads its own kernels over the cores; "
                                   "use --target llvm-cpu")
        if self.scan_unroll is None:
            eight = (self.algorithm == "forward" or self._quiet_at(8)
                     or self.update_apart())
            object.__setattr__(self, "scan_unroll", 8 if eight else 4)
        if not isinstance(self.scan_unroll, int) or isinstance(self.scan_unroll, bool) \
                or self.scan_unroll < 1:
            raise TracecError("scan_unroll (--scan-unroll) must be an integer >= 1, "
                              f"got {self.scan_unroll!r}",
                              hint="1 compiles fastest; the default (4, or 8) runs "
                                   "sequences faster")
        if self.fuse_steps is None and self.algorithm == "forward":
            object.__setattr__(self, "fuse_steps", True)
        if self.fuse_steps is not None and not isinstance(self.fuse_steps, bool):
            raise TracecError("fuse_steps (--fuse-steps / --no-fuse-steps) must be True, False "
                              f"or None, got {self.fuse_steps!r}")
        if self.event_driven not in EVENT_MODES:
            raise TracecError(f"unknown event_driven (--event-driven) '{self.event_driven}'",
                              hint=f"choose one of {', '.join(EVENT_MODES)}")
        cap = self.event_capacity
        if not isinstance(cap, (int, float)) or isinstance(cap, bool) or not 0.0 < cap <= 1.0:
            raise TracecError("event_capacity (--event-capacity) must be in (0, 1], "
                              f"got {self.event_capacity!r}",
                              hint="the fraction of a spike tensor's row the event-driven "
                                   "form holds, e.g. 0.02")

    def _quiet_at(self, unroll: int) -> bool:
        return (self.algorithm != "forward" and unroll > 1
                and self.update_every >= QUIET_ITERATIONS * unroll)

    def quiet_windows(self) -> bool:
        """Whether the unrolled iterations between updates run without the optimizer's
        branches (lower-scan-to-iree's quiet-windows)."""
        return self._quiet_at(self.scan_unroll)

    def row_gradients(self) -> bool:
        """Whether a dense weight's D-RTRL gradient is accumulated per batch row and summed
        over the batch once per window (insert-eligibility-traces' ``row_gradients``):
        with updates less often than every step, and only where ``ROW_GRADIENTS`` is set
        (it is not by default)."""
        return ROW_GRADIENTS and self.algorithm == "d-rtrl" and self.update_every > 1

    def window_traces(self) -> bool:
        """Whether D-RTRL's weight traces are carried over an unrolled window of steps
        in closed form (window-param-traces): on IREE targets where the unrolled steps
        run without the optimizer's branches (quiet windows, or the optimizer apart),
        while ``WINDOW_TRACES`` is set (it is by default)."""
        return (WINDOW_TRACES and self.algorithm == "d-rtrl" and self.target != "xla"
                and (self.quiet_windows() or self.update_apart()))

    def update_apart(self) -> bool:
        """Whether the optimizer runs apart from the steps (``apply_update``): with a
        learning rule over several parts of the batch. The training entries then carry
        no optimizer branch, and their time loop is unrolled and fused like a forward
        one's."""
        return self.algorithm != "forward" and self.batch_shards > 1

    def fused_steps(self) -> bool:
        """Whether the time loop is first lowered with its unrolled steps fused: the
        option where given, else (a learning rule's "auto") where quiet windows apply or
        the update runs apart."""
        if self.fuse_steps is not None:
            return self.fuse_steps
        return self.quiet_windows() or self.update_apart()

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
