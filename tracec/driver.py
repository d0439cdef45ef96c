"""The compiler driver: ordered stages, one IR-dump callback, cache, backends.

Stages (``--emit`` stops after one):

    stablehlo   import (JAX or a .mlir file) + normalisation passes
    tracec      tracec's passes: entry points; with a learning rule also control-flow
                flattening, the recurrence analyses, traces and the optimizer
    iree-input  the module handed to IREE (xla-input for the XLA target)
    vmfb        IREE's binary              (targets llvm-cpu, vmvx, cuda, rocm, vulkan)
    xla         jax.export artifacts       (target xla)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Callable

from tracec.diagnostics import SourceLoc, TracecError
from tracec.fileio import atomic_write
from tracec import options as _switches
from tracec.options import CompileOptions
from tracec.versions import sources_hash, tool_versions

def stage_passes(options: CompileOptions, stage: str, manifest: str = "{}",
                 fuse_steps: bool | None = None) -> list:
    """The default passes of one IR stage, as pass instances built from ``options`` (each
    option's default lives in ``CompileOptions`` alone). With a learning algorithm the
    tracec stage gains the control-flow flattening, the three analyses, the traces and
    the optimizer. ``fuse_steps`` overrides ``options.fused_steps()``."""
    from tracec.passes import PASSES

    def make(name: str, **kw):
        return PASSES[name]()(**kw)

    if stage == "stablehlo":
        return [make("strip-sharding"), make("inline-private-functions")]
    if stage == "tracec":
        learning = [] if options.algorithm == "forward" else [
            make("flatten-control-flow"), make("identify-recurrent-state"),
            make("find-hidden-groups"), make("find-param-relations"),
            make("insert-eligibility-traces", algorithm=options.algorithm,
                 decay=float(options.decay), row_gradients=options.row_gradients()),
            make("insert-optimizer", kind=options.optimizer, lr=float(options.lr),
                 update_every=options.update_every, skip_masked=options.skip_masked_steps,
                 apart=options.update_apart())]
        return [make("extract-step"), *learning, make("check-backend-ops", target=options.target),
                make("make-entry-points", manifest=manifest)]
    if stage == "xla-input":
        return [make("lower-traces-to-stablehlo"), make("leading-sums-to-dot"),
                make("algebraic-simplify"), make("lower-scan-to-stablehlo"), make("strip-tracec-attributes")]
    if stage == "iree-input":
        # auto is measured on llvm-cpu only; elsewhere only --event-driven always rewrites
        mode = ("never" if options.event_driven == "auto" and options.target != "llvm-cpu"
                else options.event_driven)
        fuse = options.fused_steps() if fuse_steps is None else fuse_steps
        return [make("event-driven-relations", mode=mode, capacity=float(options.event_capacity)),
                make("lower-scan-to-iree", unroll=options.scan_unroll,
                     fuse_steps=fuse, quiet_windows=options.quiet_windows()),
                *([make("window-param-traces", min_bytes=_switches.WINDOW_MIN_BYTES)]
                  if options.window_traces() else []),
                make("lower-traces-to-stablehlo"), make("leading-sums-to-dot"),
                make("algebraic-simplify"),
                make("fusion-barriers-to-iree"), make("guard-scatter-indices"),
                make("strip-tracec-attributes")]
    raise TracecError(f"unknown IR stage '{stage}'")


def pipeline_text(passes: list) -> str:
    """A list of passes as an xdsl-opt pipeline string (for tracec-opt and the docs)."""
    return ",".join(p.pipeline_pass_spec().__str__() for p in passes)


def ir_stages(target: str) -> tuple[str, str, str]:
    """The IR stages of a compilation, in order; the backend input depends on the target."""
    return ("stablehlo", "tracec", "xla-input" if target == "xla" else "iree-input")

# A callback sees (stage, pass_name or None, ir_text) after every pass; pass_name is
# None for the IR at the end of a stage.
IrCallback = Callable[[str, str | None, str], None]


@dataclass
class Artifact:
    """What ``tracec.compile`` returns: the binary (if built), IR per stage, manifest."""

    target: str
    manifest: dict
    ir: dict[str, str] = field(default_factory=dict)
    binary: bytes | None = None
    warnings: list[str] = field(default_factory=list)
    from_cache: bool = False
    module: object = None  # the xDSL module at the end (with keep_module=True)

    def save(self, path: str) -> None:
        """Write the binary (``tracec.fileio.atomic_write``: a regular file is replaced
        atomically, a failed write never leaves half a file; a symlink's target is
        replaced, a device or FIFO written through)."""
        if self.binary is None:
            raise TracecError("nothing to save: this compilation stopped before the binary "
                              "(--emit of an IR stage)", hint="save artifact.ir[stage] instead")
        atomic_write(path, self.binary)


# ---------------------------------------------------------------------------------
# Front: model -> xDSL module


def _import(source, options: CompileOptions, model_name: str | None, nir_options=None):
    """(module, source description) from a tracec.Model, a model.py, a .mlir/.mlirbc file
    or a NIR graph (.nir; ``nir_options``: frontends/nir_input.NirOptions)."""
    from tracec.frontends.assemble import assemble
    from tracec.frontends.stablehlo_io import display_path

    if isinstance(source, str):
        path = source
        if path.endswith((".mlir", ".mlirbc")):
            from tracec.frontends.assemble import loss_target_spec
            from tracec.frontends.mlir_input import assemble_mlir_file
            from tracec.frontends.stablehlo_io import read_mlir_file

            if options.batch_shards > 1:
                raise TracecError(f"{display_path(path)}: batch_shards (--batch-shards) needs "
                                  "a model.py or a NIR graph: a .mlir step fixes its batch",
                                  hint="compile the model.py it came from, or split the "
                                       "batch in the .mlir file yourself")
            module = assemble_mlir_file(path, read_mlir_file(path))
            desc = {"file": display_path(path), "sha256": _file_hash(path)}
            target = loss_target_spec(module)  # what train_step takes as `target`
            if target is not None:
                desc["target"] = target
            return module, desc
        if path.endswith(".nir"):
            from tracec.frontends.nir_input import load_nir_model

            model, model_file = load_nir_model(path, nir_options), path
        elif not path.endswith(".py"):
            raise TracecError(f"don't know how to compile '{path}'",
                              hint="give a model.py, a .mlir, a .mlirbc or a NIR .nir file")
        else:
            from tracec.frontends.model_loader import load_model

            model, _ = load_model(path, model_name)
            model_file = path
    else:
        model = source
        import inspect

        model_file = inspect.getsourcefile(model.step) or "<model>"
    from tracec.frontends.lower_jax import lower_model

    shards = None
    if options.batch_shards > 1:
        from tracec.frontends.batch_shards import shard_model

        model, shards = shard_model(model, options.batch_shards, seed=options.seed,
                                    model_file=model_file)
    lowered = lower_model(model, seed=options.seed, model_file=model_file)
    module = assemble(lowered)
    from tracec.passes.autodiff.engine import add_warning

    for w in lowered.warnings:  # the frontend's, shown with the passes' warnings
        add_warning(module, w)
    desc = {"file": display_path(model_file),
            "sha256": _file_hash(model_file) if os.path.isfile(model_file) else ""}
    if lowered.target is not None:
        desc["target"] = lowered.target.as_json()
    desc.update(lowered.extra)  # input_leaves / target_leaves of several streams
    if shards is not None:
        desc["batch_shards"] = shards  # moved to the manifest's top level by compile()
    return module, desc


def _file_hash(path: str) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# ---------------------------------------------------------------------------------
# Passes


def parse_pipeline(spec: str):
    """An xdsl-opt style pipeline string -> PassPipeline, with errors for people."""
    from xdsl.passes import PassPipeline
    from xdsl.utils.exceptions import ArgSpecParseError

    from tracec.passes import PASSES

    try:
        return PassPipeline.parse_spec(PASSES, spec).passes
    except ValueError as e:
        msg = str(e)
        if msg.startswith("Unrecognized passes"):
            raise TracecError(f"unknown pass in pipeline '{spec}': {msg.split(':', 1)[1].strip()}",
                              hint="tracec --list-passes shows the available passes") from e
        raise TracecError(f"bad pipeline '{spec}': {msg}") from e
    except (Exception, ArgSpecParseError) as e:
        # xDSL's pipeline parser raises its own errors for syntax (ArgSpecParseError
        # derives from BaseException, not Exception).
        text = str(e).strip()
        why = text.splitlines()[-1].strip() if text else type(e).__name__
        raise TracecError(f"bad pipeline '{spec}': {why}",
                          hint="the syntax is pass-a,pass-b{option=value}") from e


def run_passes(module, passes, stage: str, callback: IrCallback | None,
               marks: dict | None = None) -> None:
    """Apply ``passes`` to ``module``, verifying after each; ``marks`` collects the unit
    attributes that passes set on the module for the driver (before a later pass strips
    them)."""
    from tracec.dialects import make_context
    from tracec.frontends.stablehlo_io import print_generic
    from tracec.passes.window_param_traces import WINDOWED

    ctx = make_context()
    for p in passes:
        p.apply(ctx, module)
        if marks is not None and WINDOWED in module.attributes:
            marks[WINDOWED] = True
        try:
            module.verify()
        except TracecError:
            raise
        except Exception as e:
            raise TracecError(f"internal error: IR does not verify after pass '{p.name}': "
                              f"{str(e).strip().splitlines()[0]}",
                              hint="please report this with the model") from e
        if callback is not None:
            callback(stage, p.name, print_generic(module))


# ---------------------------------------------------------------------------------
# Cache


def cache_dir() -> str | None:
    if os.environ.get("TRACEC_CACHE", "1") == "0":
        return None
    return os.environ.get("TRACEC_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "tracec")


def _cache_key(input_ir: str, options: CompileOptions, pipeline: str | None, source: dict) -> str:
    h = hashlib.sha256()
    # The pipelines as run, every pass's options spelled out: a switch that reaches a
    # pass without being a compile option (tracec.options) changes the key too.
    if pipeline is None:
        pipeline = ";".join(pipeline_text(stage_passes(options, stage))
                            for stage in ir_stages(options.target))
    payload = {"options": options.as_dict(), "pipeline": pipeline, "tools": tool_versions(),
               "sources": sources_hash(), "source_file": source.get("file")}
    h.update(json.dumps(payload, sort_keys=True).encode())
    h.update(input_ir.encode())
    return h.hexdigest()


def _cache_load(key: str) -> Artifact | None:
    """The cached artifact of ``key``, or None. Anything unexpected in an entry (a
    damaged or crafted file, an entry from another version) is a miss, never a wrong
    artifact and never an error."""
    d = cache_dir()
    if d is None:
        return None
    meta_path = os.path.join(d, key + ".json")
    bin_path = os.path.join(d, key + ".bin")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        with open(bin_path, "rb") as f:
            binary = f.read()
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    target, manifest, ir, warnings = (meta.get("target"), meta.get("manifest"), meta.get("ir"),
                                      meta.get("warnings", []))
    if not (isinstance(target, str) and isinstance(manifest, dict) and isinstance(ir, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in ir.items())
            and isinstance(warnings, list) and all(isinstance(w, str) for w in warnings)):
        return None
    if hashlib.sha256(binary).hexdigest() != meta.get("binary_sha256"):
        return None  # a damaged entry is a miss, never a wrong artifact
    from tracec.runtime.artifact import ArtifactError, unseal

    try:
        unseal(bin_path, binary)  # the artifact's own digest (docs/abi.md)
    except ArtifactError:
        return None
    return Artifact(target=target, manifest=manifest, ir=ir, binary=binary,
                    warnings=list(warnings), from_cache=True)


def _cache_store(key: str, art: Artifact) -> None:
    d = cache_dir()
    if d is None or art.binary is None:
        return
    try:
        os.makedirs(d, exist_ok=True)
        atomic_write(os.path.join(d, key + ".bin"), art.binary)
        atomic_write(os.path.join(d, key + ".json"), json.dumps({
            "target": art.target, "manifest": art.manifest, "ir": art.ir,
            "warnings": art.warnings, "binary_sha256": hashlib.sha256(art.binary).hexdigest()}))
    except (OSError, TracecError):
        pass  # the cache is an optimisation; never fail a compile because of it


# ---------------------------------------------------------------------------------
# The driver


def compile(source, options: CompileOptions | None = None, *, emit: str | None = None,
            pipeline: str | None = None, callback: IrCallback | None = None,
            model_name: str | None = None, use_cache: bool = True, keep_module: bool = False,
            nir_options=None, **option_kwargs) -> Artifact:
    """Compile a ``tracec.Model`` (or a model.py / .mlir path) into an :class:`Artifact`.

    ``options`` or keyword options (``algorithm=``, ``target=``, ``seed=``, ...);
    ``emit`` stops after a stage; ``pipeline`` replaces the default passes of the
    IR stages; ``callback(stage, pass, ir)`` sees the IR after every pass;
    ``nir_options`` (``tracec.frontends.nir_input.NirOptions``: dt, batch, loss) say how
    a ``.nir`` graph becomes a step (docs/nir.md).
    """
    from tracec.frontends.stablehlo_io import print_generic

    if options is None:
        unknown = set(option_kwargs) - set(CompileOptions.field_names())
        if unknown:
            raise TracecError(f"unknown compile option(s): {', '.join(sorted(unknown))}",
                              hint=f"options are {', '.join(CompileOptions.field_names())}")
        options = CompileOptions(**option_kwargs)
    final_stage = "xla" if options.target == "xla" else "vmfb"
    emit = emit or final_stage
    stages = ir_stages(options.target)
    if emit not in stages and emit != final_stage:
        valid = list(stages) + [final_stage]
        raise TracecError(f"unknown stage '{emit}' for target {options.target}",
                          hint=f"--emit takes one of {', '.join(valid)}")

    module, source = _import(source, options, model_name, nir_options)
    if emit == final_stage and options.algorithm != "forward":
        _require_loss(module, source, options.algorithm)
    input_ir = print_generic(module)
    key = None
    if use_cache and callback is None and emit == final_stage:
        key = _cache_key(input_ir, options, pipeline, source)
        hit = _cache_load(key)
        if hit is not None:
            return hit

    warnings: list[str] = []
    if options.skip_masked_steps and options.algorithm == "d-rtrl" and emit == final_stage:
        where = f"{source['file']}: " if source.get("file") else ""
        warnings.append(f"{where}warning: --skip-masked-steps does not pay with --algorithm "
                        "d-rtrl: a masked step still updates every weight's trace, most of a "
                        "D-RTRL step (measured 0.9-1.1x as fast); it pays with es-d-rtrl")
    if options.update_apart() and options.update_every == 1 and emit == final_stage:
        where = f"{source['file']}: " if source.get("file") else ""
        warnings.append(f"{where}warning: --batch-shards with --update-every 1 brings the "
                        "parts together after every step, which costs more than it saves; "
                        "update once per window of many steps (--update-every K)")
    ir: dict[str, str] = {}
    manifest_extra = {
        "tracec_version": tool_versions()["tracec"], "target": options.target,
        "algorithm": options.algorithm, "options": options.as_dict(),
        "source": {k: v for k, v in source.items() if k != "batch_shards"},
    }
    if "batch_shards" in source:
        manifest_extra["batch_shards"] = source["batch_shards"]
    if callback is not None:
        callback("import", None, input_ir)
    if pipeline is not None:
        passes_of = {"stablehlo": [], "tracec": parse_pipeline(pipeline), stages[2]: []}
    else:
        manifest = json.dumps(manifest_extra, sort_keys=True)
        passes_of = {stage: stage_passes(options, stage, manifest) for stage in stages}
    from tracec.passes.autodiff.engine import module_warnings

    # A learning rule's unrolled steps fused by default ("auto", where quiet windows
    # apply): IREE's aggressive fusion breaks some such modules, whose loop is then
    # lowered again with its steps apart (the module before the stage is kept for that).
    # With D-RTRL's traces carried over windows (window-param-traces), IREE's aggressive
    # fusion fails on the windowed loop: such a module is compiled again without that
    # fusion, its windows kept, and nothing said (faster than the steps apart:
    # benchmarks/results/window_traces_ab.md).
    marks: dict = {}
    relower_apart = (pipeline is None and emit == final_stage and options.target != "xla"
              and options.fuse_steps is None and options.fused_steps())
    before_backend = None
    for stage in stages:
        if relower_apart and stage == stages[2]:
            before_backend = module.clone()
        run_passes(module, passes_of[stage], stage, callback, marks)
        # Passes never print: they leave warnings on the module (tracec.warnings).
        warnings += [w for w in module_warnings(module) if w not in warnings]
        ir[stage] = print_generic(module)
        if callback is not None:
            callback(stage, None, ir[stage])
        if stage == emit:
            return Artifact(options.target, _manifest_of(module), ir,
                            warnings=list(warnings),
                            module=module if keep_module else None)

    manifest = _manifest_of(module)
    from tracec import backends
    from tracec.passes.window_param_traces import WINDOWED

    windowed = marks.get(WINDOWED, False)
    relower_apart = relower_apart and not windowed
    if options.target == "xla":
        binary = backends.compile_xla(ir["xla-input"], manifest, options)
    else:
        try:
            binary = backends.compile_iree(
                ir["iree-input"], options, source_file=source.get("file"),
                aggressive_fusion=backends.aggressive_fusion_fits(module),
                warnings=None if windowed else warnings, retry_without_fusion=not relower_apart)
        except backends.AggressiveFusionFailed:
            module = before_backend
            run_passes(module, stage_passes(options, stages[2], fuse_steps=False), stages[2],
                       callback)
            ir[stages[2]] = print_generic(module)
            if callback is not None:
                callback(stages[2], None, ir[stages[2]])
            binary = backends.compile_iree(
                ir["iree-input"], options, source_file=source.get("file"),
                aggressive_fusion=backends.aggressive_fusion_fits(module), warnings=warnings)
    art = Artifact(options.target, manifest, ir, binary, list(warnings))
    if key is not None:
        _cache_store(key, art)
    return art


def _require_loss(module, source: dict, algorithm: str) -> None:
    """Training needs ``@loss``: a .mlir file without the function is refused before any
    pass runs."""
    from xdsl.dialects import func

    names = {op.sym_name.data for op in module.ops if isinstance(op, func.FuncOp)}
    if "loss" in names:
        return
    shown = source.get("file") or ""
    if shown.endswith((".mlir", ".mlirbc")):
        from tracec.frontends.mlir_input import missing_loss_hint

        raise TracecError(f"{shown} has no @loss function; training (--algorithm {algorithm}) "
                          "needs one", hint=missing_loss_hint(module))
    # (a model without loss: insert-eligibility-traces says so)


def _manifest_of(module) -> dict:
    from xdsl.dialects import func
    from xdsl.dialects.builtin import DictionaryAttr

    for op in module.ops:
        if isinstance(op, func.FuncOp):
            refl = op.attributes.get("iree.reflection")
            if isinstance(refl, DictionaryAttr) and "tracec.manifest" in refl.data:
                return json.loads(refl.data["tracec.manifest"].data)
    return {}


__all__ = ["Artifact", "compile", "atomic_write", "parse_pipeline", "stage_passes",
           "pipeline_text", "SourceLoc"]
