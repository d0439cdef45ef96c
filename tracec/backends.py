"""Backends: IREE (llvm-cpu, vmvx, cuda, rocm, vulkan, cross-compiled CPUs) and XLA.

IREE errors are turned into tracec errors that name the user's source line (the IR
handed to IREE keeps the model's locations) and the failing op.
"""

from __future__ import annotations

import re

from tracec.diagnostics import SourceLoc, TracecError
from tracec.options import CompileOptions


def iree_flags(options: CompileOptions) -> list[str]:
    t = options.target
    if t in ("llvm-cpu", "vmvx"):
        flags = ["--iree-hal-target-device=local", f"--iree-hal-local-target-device-backends={t}"]
        if t == "llvm-cpu":
            if options.target_triple:
                flags.append(f"--iree-llvmcpu-target-triple={options.target_triple}")
                cpu = "generic" if options.cpu == "host" else options.cpu
            else:
                cpu = options.cpu
            flags.append(f"--iree-llvmcpu-target-cpu={cpu}")
        return flags
    if t == "cuda":
        return ["--iree-hal-target-device=cuda", f"--iree-cuda-target={options.cuda_arch}"]
    if t == "rocm":
        return ["--iree-hal-target-device=hip", f"--iree-rocm-target={options.rocm_arch}"]
    if t == "vulkan":
        return ["--iree-hal-target-device=vulkan", "--iree-vulkan-target=ampere"]
    raise TracecError(f"target {t} is not an IREE target")


_DIAG = re.compile(r'^(?P<loc>(?:"?[^\s"]+"?):(?P<line>\d+):(?P<col>\d+)|<unknown>:0):\s*error:\s*(?P<msg>.*)$')


def _iree_error(diagnostics: str, target: str) -> TracecError:
    """The first ``error:`` line of IREE's output as a tracec error."""
    for line in diagnostics.splitlines():
        m = _DIAG.match(line.strip())
        if not m:
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
    tail = diagnostics.strip().splitlines()[-1] if diagnostics.strip() else "no diagnostics"
    return TracecError(f"the {target} backend (IREE) failed: {tail[:300]}")


def compile_iree(module_text: str, options: CompileOptions, source_file: str | None = None) -> bytes:
    import iree.compiler as ic

    flags = iree_flags(options) + ["--iree-input-type=stablehlo", "--mlir-print-op-on-diagnostic=false"]
    try:
        return ic.tools.compile_str(module_text, extra_args=flags)
    except ic.CompilerToolError as e:
        raise _iree_error(e.args[0] if e.args else str(e), options.target) from e


def compile_xla(module_text: str, manifest: dict, options: CompileOptions) -> bytes:
    from tracec.xla_backend import build_xla_artifact

    return build_xla_artifact(module_text, manifest)
