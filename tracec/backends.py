"""Backends: IREE (llvm-cpu, vmvx, cuda, rocm, vulkan, cross-compiled CPUs) and XLA.

IREE errors are turned into tracec errors that name the user's source line (the IR
handed to IREE keeps the model's locations) and the failing op.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys

from tracec.diagnostics import SourceLoc, TracecError
from tracec.options import CompileOptions


AGGRESSIVE_FUSION = "--iree-dispatch-creation-enable-aggressive-fusion=true"

#: IREE diagnostics that say nothing to a user: aggressive fusion reports a consumer it
#: left in its own dispatch as a warning at the model's source line.
_BENIGN = ("failed to move consumer into region",)


#: The bytes IREE's llvm-cpu code generation may keep on a dispatch's stack.
STACK_LIMIT_BYTES = 32768


def aggressive_fusion_fits(module) -> bool:
    """Whether IREE's aggressive fusion may be used on ``module``: it fuses the
    producer of a scatter's updates (a connection list's ``x[:, pre] * w``) into the
    scatter's dispatch, which then holds all updates on its stack; past the stack limit
    the llvm-cpu backend refuses the module. Such modules are compiled without it."""
    from tracec.dialects import stablehlo as shlo

    for op in module.walk():
        if isinstance(op, shlo.ScatterOp):
            updates = op.operands[-1].type
            if math.prod(updates.get_shape()) * 4 > STACK_LIMIT_BYTES:
                return False
    return True


def iree_flags(options: CompileOptions, aggressive_fusion: bool = True) -> list[str]:
    t = options.target
    if t in ("llvm-cpu", "vmvx"):
        flags = ["--iree-hal-target-device=local", f"--iree-hal-local-target-device-backends={t}"]
        if t == "llvm-cpu":
            if options.target_triple:
                flags.append(f"--iree-llvmcpu-target-triple={options.target_triple}")
                cpu = "generic" if options.cpu == "host" else options.cpu
                if options.target_triple.startswith("riscv64") and options.cpu == "host":
                    # LLVM's generic riscv64 has no floating point; the Linux ABI's
                    # baseline (rv64gc, hard-float lp64d) is what boards run
                    flags += ["--iree-llvmcpu-target-cpu-features=+m,+a,+f,+d,+c",
                              "--iree-llvmcpu-target-abi=lp64d"]
            else:
                cpu = options.cpu
            flags.append(f"--iree-llvmcpu-target-cpu={cpu}")
        # Fuse more producers and consumers into one dispatch: one ES-D-RTRL time step of
        # lif2's train_sequence runs 28 dispatches instead of 53, ~13% faster; results
        # equal to float rounding. See benchmarks/results/dispatch_profile.md.
        if aggressive_fusion:
            flags.append(AGGRESSIVE_FUSION)
        return flags
    if t == "cuda":
        return ["--iree-hal-target-device=cuda", f"--iree-cuda-target={options.cuda_arch}"]
    if t == "rocm":
        return ["--iree-hal-target-device=hip", f"--iree-rocm-target={options.rocm_arch}"]
    if t == "vulkan":
        return ["--iree-hal-target-device=vulkan", f"--iree-vulkan-target={options.vulkan_target}"]
    raise TracecError(f"target {t} is not an IREE target")


#: One diagnostic line of iree-compile: ``file:line:col: severity: message``.
_DIAG = re.compile(r'^(?P<loc>(?:"?[^\s"]+"?):(?P<line>\d+):(?P<col>\d+)|<unknown>:0):\s*'
                   r'(?P<sev>error|warning|note|remark):\s*(?P<msg>.*)$')


#: Lines of a crashing iree-compile that are its backtrace, not a message.
_BACKTRACE = re.compile(r"^(\s*#\d+\s|Stack dump:|Please report issues|\d+\.\s+Program arguments"
                        r"|\s*\d+\.\s)")


def _llvm_target_error(diagnostics: str, options: CompileOptions | None) -> TracecError | None:
    """LLVM's complaint about --target-triple or --cpu (which iree-compile reports by
    crashing with a backtrace) as one line."""
    if options is None or options.target != "llvm-cpu":
        return None
    m = re.search(r"createTargetMachine\((?P<triple>[^)]*)\) failed", diagnostics)
    if m or "No available targets are compatible with triple" in diagnostics:
        return TracecError(f"unknown target triple '{options.target_triple}'",
                           hint="use an LLVM triple such as x86_64-linux-gnu, "
                                "aarch64-linux-gnu or riscv64-linux-gnu")
    if re.search(r"is not a recognized processor for this target|Unknown CPU for target",
                 diagnostics):
        arch = re.search(r"Unknown CPU for target architecture (\S+?)\.?$", diagnostics, re.M)
        on = f" for {arch.group(1)}" if arch else ""
        return TracecError(f"unknown CPU '{options.cpu}'{on}",
                           hint="use --cpu host, generic, or an LLVM CPU name such as "
                                "x86-64-v3, znver4 or neoverse-n1")
    return None


def _iree_error(diagnostics: str, target: str, options: CompileOptions | None = None) -> TracecError:
    """The first ``error:`` line of IREE's output as a tracec error."""
    llvm = _llvm_target_error(diagnostics, options)
    if llvm is not None:
        return llvm
    for line in diagnostics.splitlines():
        m = _DIAG.match(line.strip())
        if not m or m.group("sev") != "error":
            continue
        msg = m.group("msg").strip()
        op = None
        om = re.search(r"operation '([\w.]+)'", msg) or re.search(r"'([\w]+\.[\w.]+)' op", msg)
        if om:
            op = om.group(1)
        loc = None
        if m.group("line") and m.group("line") != "0":
            file = m.group("loc").rsplit(":", 2)[0].strip('"')
            loc = SourceLoc(file, int(m.group("line")), int(m.group("col")))
        return TracecError(f"the {target} backend (IREE) failed: {msg[:300]}", loc=loc, op=op,
                           hint="simplify the op at this line, or try --target xla")
    lines = [ln.strip() for ln in diagnostics.splitlines()
             if ln.strip() and not _BACKTRACE.match(ln)]
    # A crash: its "LLVM ERROR: ..." line says what; otherwise the first line left.
    crash = [ln for ln in lines if ln.startswith("LLVM ERROR:")]
    what = (crash or lines or ["no diagnostics"])[0]
    return TracecError(f"the {target} backend (IREE) failed: {what[:300]}")


class AggressiveFusionFailed(Exception):
    """IREE's aggressive fusion failed on a module that ``compile_iree`` was told not to
    compile again without it."""


def compile_iree(module_text: str, options: CompileOptions, source_file: str | None = None,
                 aggressive_fusion: bool = True, warnings: list[str] | None = None,
                 retry_without_fusion: bool = True) -> bytes:
    """Run iree-compile on ``module_text``; its errors become tracec errors, its warnings
    (other than the benign ones) go to stderr. tracec's own warnings about the compile
    are appended to ``warnings``. Where IREE's aggressive fusion fails on the module it
    is compiled once more without it, or, with ``retry_without_fusion`` false,
    ``AggressiveFusionFailed`` is raised."""
    from iree.compiler.tools.binaries import find_tool

    def run(fusion: bool):
        flags = iree_flags(options, fusion) + ["--iree-input-type=stablehlo",
                                               "--mlir-print-op-on-diagnostic=false"]
        return subprocess.run([find_tool("iree-compile"), "-", *flags],
                               input=module_text.encode(), capture_output=True)

    p = run(aggressive_fusion)
    diagnostics = p.stderr.decode(errors="replace")
    fused = AGGRESSIVE_FUSION in iree_flags(options, aggressive_fusion)
    if p.returncode != 0 and fused and _llvm_target_error(diagnostics, options) is None:
        # IREE 3.13's aggressive fusion is not sound on every module (across the unrolled
        # steps of an ALIF training loop it builds a region whose operand does not
        # dominate its use): a module it breaks is compiled once more without it.
        if not retry_without_fusion:
            raise AggressiveFusionFailed(diagnostics)
        p = run(False)
        diagnostics = p.stderr.decode(errors="replace")
        if p.returncode == 0 and warnings is not None:
            where = f"{source_file}: " if source_file else ""
            other = "; --no-fuse-steps may be faster" if options.fuse_steps else ""
            warnings.append(f"{where}warning: IREE's aggressive fusion failed on this model; "
                            f"compiled without it (same results, possibly slower{other})")
    if p.returncode != 0:
        raise _iree_error(diagnostics, options.target, options)
    shown = _without_benign(diagnostics)
    if shown:
        sys.stderr.write(shown)
    if not p.stdout:
        raise TracecError(f"the {options.target} backend (IREE) wrote no module",
                          hint="please report this with the model")
    from tracec.runtime.artifact import seal

    return seal(p.stdout)  # the integrity digest (docs/abi.md)


def _without_benign(diagnostics: str) -> str:
    """``diagnostics`` less each benign warning and the source excerpt and notes after it."""
    kept, skipping = [], False
    for line in diagnostics.splitlines(keepends=True):
        m = _DIAG.match(line.strip())
        if m:
            skipping = (m.group("sev") == "warning" and any(b in m.group("msg") for b in _BENIGN)
                        or skipping and m.group("sev") == "note")
        if not skipping:
            kept.append(line)
    return "".join(kept)



def compile_xla(module_text: str, manifest: dict, options: CompileOptions) -> bytes:
    from tracec.xla_backend import build_xla_artifact

    return build_xla_artifact(module_text, manifest)
