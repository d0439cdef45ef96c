"""The XLA backend (``--target xla``): one ``jax.export.Exported`` per entry point.

The input is the generic-form StableHLO module of the ``tracec`` stage: public entry
functions (``forward``, ``forward_sequence``, ``init_params``, ``init_state``, and
``train_step``/``train_sequence`` for the learning rules) plus private helpers (``@step``, composite
decompositions such as ``@tracec.spike``). For each entry we build a module whose
public ``@main`` follows jax.export's calling convention and wrap it, with its
abstract signature, in an :class:`jax.export.Exported` built field by field; jax
never traces the model again, so the artifact loads without the model source.

The module of one entry (what ``Exported.mlir_module()`` shows)::

    func public @main(%platform_index: tensor<i32> {jax.global_constant = "_platform_index"},
                      %args...) -> results...     # calls the entry, ignores the index
    func private @tracec_entry_<name>(...)      # the entry function, tracec attrs stripped
    func private @...                            # the private functions it references

- Platforms: ``("cpu", "cuda", "rocm", "tpu")``. The module is plain StableHLO (no
  custom calls), so it runs on each; a multi-platform Exported takes a leading
  platform-index argument (a jax "global constant"), which ``@main`` ignores.
- Shapes: every dynamic dimension (``?``) in an entry's signature is the sequence
  length, the one dimension variable ``T`` (ABI 1: only the leading dim of sequence
  inputs/outputs is dynamic). ``uses_global_constants`` is true, so jax refines the
  shapes to the concrete T at each call (one XLA compilation per distinct T).
- ``mlir_module_serialized`` is a StableHLO portable artifact (VHLO bytecode) at the
  version ``WEEK_4`` of the jaxlib that builds it, as ``jax.export`` itself writes.
- ``in_tree``: ``((a_0, ..., a_{n-1}), {})`` — flat positional arrays;
  ``out_tree``: a flat tuple. Calling convention version: jax's current default
  (``jax_export_calling_convention_version``, 10 in jax 0.10.2 and 0.12.0.1).

Container layout (all integers little-endian)::

    XLA_MAGIC                       b"TRACEC-XLA\\0" (11 bytes, runtime/artifact.py)
    header_len                      u64
    header                          UTF-8 JSON, header_len bytes:
        {"manifest": {...},                       the tracec manifest (docs/design.md s.2)
         "entries": {name: [offset, length]},     blob position, offset from payload start
         "sha256": {name: hex digest},            of each blob (corruption check)
         "jax_version": "...", "calling_convention_version": N}
    payload                         the ``Exported.serialize()`` blobs, concatenated
    digest                          b"tracec-sha256:" + 64 hex digits: SHA-256 of all
                                    the bytes before it (tracec/runtime/artifact.py);
                                    the file ends exactly there

Uses private jax APIs: the ``Exported`` dataclass fields (including
``_has_named_shardings`` where jax has it (0.10; 0.12 dropped it), ``_in_named_shardings``,
``_out_named_shardings`` and ``_get_vjp``), ``jax.interpreters.mlir.make_ir_context`` and jaxlib's MLIR bindings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct

from tracec.diagnostics import TracecError

XLA_MAGIC = b"TRACEC-XLA\0"  # the same bytes as tracec.runtime.artifact.XLA_MAGIC
HEADER_LEN = struct.Struct("<Q")
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
DIM_VAR = "T"

_DTYPES = {"f32": "float32", "f64": "float64", "f16": "float16", "bf16": "bfloat16",
           "i1": "bool", "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
           "ui8": "uint8", "ui16": "uint16", "ui32": "uint32", "ui64": "uint64"}


def build_xla_artifact(module_text: str, manifest: dict) -> bytes:
    """The ``--target xla`` artifact for ``module_text`` (generic StableHLO, tracec stage)."""
    import jax

    entries = list(manifest.get("entries") or ())
    if not entries:
        raise TracecError("the XLA backend got a module without entry points in its manifest",
                          hint="the make-entry-points pass must run before the backend")
    blobs: dict[str, bytes] = {}
    for name in entries:
        blobs[name] = bytes(_export_entry(module_text, name).serialize())
    return pack(manifest, blobs, extra={"jax_version": jax.__version__,
                                        "calling_convention_version": _cc_version()})


def pack(manifest: dict, blobs: dict[str, bytes], extra: dict | None = None) -> bytes:
    """The container around serialized Exported blobs (layout in the module docstring)."""
    offsets, pos = {}, 0
    for name, blob in blobs.items():
        offsets[name] = [pos, len(blob)]
        pos += len(blob)
    header = {"manifest": manifest, "entries": offsets,
              "sha256": {n: hashlib.sha256(b).hexdigest() for n, b in blobs.items()},
              **(extra or {})}
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    from tracec.runtime.artifact import seal

    return seal(XLA_MAGIC + HEADER_LEN.pack(len(head)) + head + b"".join(blobs.values()))


# ---------------------------------------------------------------------------------


def _export_entry(module_text: str, entry: str):
    """One entry of the module as a jax.export.Exported."""
    from jax import export, tree_util
    from jax.interpreters import mlir as jmlir
    from jaxlib.mlir import ir, passmanager
    from jaxlib.mlir.dialects import func, stablehlo

    ctx = jmlir.make_ir_context()
    with ctx, ir.Location.unknown(ctx):
        try:
            module = ir.Module.parse(module_text)
        except Exception as e:  # MLIRError; the first line says what
            raise TracecError("the XLA backend cannot read the tracec-stage module: "
                              f"{_first_line(e)}", hint="please report this with the model") from e
        funcs = [op for op in module.body.operations if op.operation.name == "func.func"]
        target = next((f for f in funcs if _sym_name(f) == entry), None)
        if target is None:
            raise TracecError(f"the XLA backend found no entry function '{entry}' in the module")

        # The entry becomes a private function; a new public @main calls it.
        inner = f"tracec_entry_{entry}"
        taken = {_sym_name(f) for f in funcs}
        for f in funcs:
            old = _sym_name(f)
            if old in ("main", inner):  # free the names we need
                new = next(f"{old}_{i}" for i in range(1, len(taken) + 2)
                           if f"{old}_{i}" not in taken)
                taken.add(new)
                _rename(ir, module, f, new)
        _rename(ir, module, target, inner)
        for f in funcs:
            f.attributes["sym_visibility"] = ir.StringAttr.get("private")
            _strip_tracec_attrs(ir, f)

        ftype = ir.FunctionType(ir.TypeAttr(target.attributes["function_type"]).value)
        in_types, out_types = list(ftype.inputs), list(ftype.results)
        i32 = ir.RankedTensorType.get([], ir.IntegerType.get_signless(32))
        main = func.FuncOp("main", ir.FunctionType.get([i32] + in_types, out_types),
                           ip=ir.InsertionPoint.at_block_begin(module.body))
        main.attributes["sym_visibility"] = ir.StringAttr.get("public")
        arg_attrs = [ir.DictAttr.get({"jax.global_constant": ir.StringAttr.get("_platform_index")})]
        arg_attrs += [ir.DictAttr.get({}) for _ in in_types]
        main.arg_attrs = ir.ArrayAttr.get(arg_attrs)
        block = main.add_entry_block()
        with ir.InsertionPoint(block):
            call = func.CallOp(out_types, ir.FlatSymbolRefAttr.get(inner), list(block.arguments)[1:])
            func.ReturnOp(list(call.results))
        module.operation.attributes["jax.uses_shape_polymorphism"] = ir.BoolAttr.get(True)
        passmanager.PassManager.parse("builtin.module(symbol-dce)").run(module.operation)
        why = ""
        try:
            ok = module.operation.verify()
        except Exception as e:  # MLIRError
            ok, why = False, f": {_first_line(e)}"
        if not ok:
            raise TracecError(f"internal error: the XLA module of '{entry}' does not verify{why}")
        req = stablehlo.StablehloCompatibilityRequirement.WEEK_4
        target_version = stablehlo.get_version_from_compatibility_requirement(req)
        try:
            serialized = stablehlo.serialize_portable_artifact(module, target_version)
        except Exception as e:
            raise TracecError(f"the XLA backend cannot serialize '{entry}' as a StableHLO "
                              f"portable artifact: {_first_line(e)}") from e

        (t_dim,) = export.symbolic_shape(DIM_VAR)  # one scope for the entry's avals
        in_avals = _avals(ir, in_types, t_dim, entry, "argument")
        out_avals = _avals(ir, out_types, t_dim, entry, "result")
    if _has_dim_var(out_avals) and not _has_dim_var(in_avals):
        raise TracecError(f"entry '{entry}' has a result with a dynamic dimension but no "
                          "argument with one: its sequence length cannot be inferred")

    n_in, n_out = len(in_avals), len(out_avals)
    # jax 0.10 has the flag _has_named_shardings (True for exports after 1/15/2026); jax 0.12
    # dropped it (named shardings are always there).
    flag = {"_has_named_shardings": True} if "_has_named_shardings" in {
        f.name for f in dataclasses.fields(export.Exported)} else {}
    return export.Exported(
        fun_name=entry,
        in_tree=tree_util.tree_structure((tuple(range(n_in)), {})),
        in_avals=tuple(in_avals),
        out_tree=tree_util.tree_structure(tuple(range(n_out))),
        out_avals=tuple(out_avals),
        **flag,
        _in_named_shardings=(None,) * n_in,
        _out_named_shardings=(None,) * n_out,
        in_shardings_hlo=(None,) * n_in,
        out_shardings_hlo=(None,) * n_out,
        nr_devices=1,
        platforms=PLATFORMS,
        ordered_effects=(),
        unordered_effects=(),
        disabled_safety_checks=(),
        mlir_module_serialized=serialized,
        calling_convention_version=_cc_version(),
        module_kept_var_idx=tuple(range(n_in)),
        uses_global_constants=True,
        _get_vjp=None,
    )


def _cc_version() -> int:
    """jax.export's current calling convention version (what jax.export would write)."""
    import jax

    return int(jax.config.jax_export_calling_convention_version)


def _sym_name(f) -> str:
    from jaxlib.mlir import ir

    return ir.StringAttr(f.attributes["sym_name"]).value


def _rename(ir, module, f, new: str) -> None:
    old = _sym_name(f)
    ir.SymbolTable.replace_all_symbol_uses(old, new, module.operation)
    ir.SymbolTable.set_symbol_name(f, new)


def _strip_tracec_attrs(ir, f) -> None:
    """Drop ``iree.reflection`` and the ``tracec.*`` argument/result attributes."""
    if "iree.reflection" in f.attributes:
        del f.attributes["iree.reflection"]
    for key in ("arg_attrs", "res_attrs"):
        if key not in f.attributes:
            continue
        dicts = [ir.DictAttr.get({a.name: a.attr for a in ir.DictAttr(d)
                                  if not a.name.startswith("tracec.")})
                 for d in ir.ArrayAttr(f.attributes[key])]
        f.attributes[key] = ir.ArrayAttr.get(dicts)


def _avals(ir, types, t_dim, entry: str, what: str) -> list:
    """Abstract values of ``types``; every dynamic dimension is ``t_dim``."""
    import jax
    import numpy as np

    out = []
    for i, t in enumerate(types):
        try:
            rt = ir.RankedTensorType(t)
        except ValueError as e:
            raise TracecError(f"entry '{entry}' {what} {i} has type {t}; the XLA target "
                              "supports ranked tensors only") from e
        elt = str(rt.element_type)
        if elt not in _DTYPES:
            raise TracecError(f"entry '{entry}' {what} {i} has element type {elt}, which the "
                              "XLA target does not support")
        shape = tuple(t_dim if rt.is_dynamic_dim(d) else rt.get_dim_size(d)
                      for d in range(rt.rank))
        dtype = jax.numpy.bfloat16 if elt == "bf16" else np.dtype(_DTYPES[elt])
        out.append(jax.core.ShapedArray(shape, dtype))
    return out


def _has_dim_var(avals) -> bool:
    return any(not isinstance(d, int) for a in avals for d in a.shape)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__
