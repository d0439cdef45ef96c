"""StableHLO text <-> xDSL module.

Import: any producer's MLIR (text or bytecode) is printed by the MLIR bindings in
*generic op form* with inline locations, locations are normalised to
``"file":line:col`` (xDSL cannot read MLIR's ``callsite``/range forms, and people
want the user's line, not JAX's internals), hex float literals are made safe for
xDSL (docs/design.md section 4: xDSL reads ``dense<0xFF800000>`` as the integer
4286578688), constants kept in the file's resource section (``dense_resource``, as
torch-mlir writes parameters) are inlined, then xDSL parses it with tracec's typed
dialects registered.

Export: xDSL prints generic form with locations; both IREE and jaxlib's MLIR parser
accept it.
"""

from __future__ import annotations

import io
import os
import re
import struct
import sys
from typing import Callable

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import ParseError

from tracec.diagnostics import SourceLoc, TracecError, display_path
from tracec.dialects import make_context

# ---------------------------------------------------------------------------------
# Locations

_FILE_LINE_COL = re.compile(r'"((?:[^"\\]|\\.)*)":(\d+):(\d+)')


def _matching_paren(text: str, open_index: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``open_index``; strings are skipped."""
    depth, k, in_string = 0, open_index, False
    while k < len(text):
        c = text[k]
        if in_string:
            if c == "\\":
                k += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return k
        k += 1
    raise ValueError("unbalanced location")


# tracec's own source folders: frames there (e.g. where the frontend calls jax) are ours,
# not the user's.
_OWN_DIRS = tuple(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), d) + os.sep
                  for d in ("tracec", "frontends", "passes", "runtime"))


_PREFIXES = tuple({os.path.join(os.path.abspath(p), "") for p in
                   (sys.prefix, sys.base_prefix, sys.exec_prefix)})


def _is_library_frame(path: str) -> bool:
    norm = path.replace("\\", "/")
    return (os.path.abspath(path).startswith(_PREFIXES) or norm.startswith("<") or "/site-packages/" in norm or "/dist-packages/" in norm
            or "/lib/python3" in norm or os.path.abspath(path).startswith(_OWN_DIRS))


def pick_user_frame(loc_body: str, prefer_file: str | None) -> tuple[str, int, int] | None:
    """The innermost ``file:line:col`` of a location that is the user's code.

    MLIR prints call-site chains innermost first. With a model file, the first frame
    in that file wins, then one in a file beside it (helpers the model imports);
    frames elsewhere (e.g. the script that called ``tracec.compile``) are not the
    model's and give no location. Without one (a .mlir input), the first frame that
    is not a library's.
    """
    frames = [(m.group(1), int(m.group(2)), int(m.group(3)))
              for m in _FILE_LINE_COL.finditer(loc_body)]
    if prefer_file:
        target = os.path.realpath(prefer_file)
        for f in frames:
            if os.path.realpath(f[0]) == target:
                return f
        model_dir = os.path.join(os.path.dirname(target), "")
        for f in frames:
            if os.path.realpath(f[0]).startswith(model_dir) and not _is_library_frame(f[0]):
                return f
        return None
    for f in frames:
        if not _is_library_frame(f[0]):
            return f
    return None


def normalize_locations(text: str, prefer_file: str | None = None,
                        display: Callable[[str], str] | None = None) -> str:
    """Rewrite every ``loc(...)`` in generic MLIR text to ``loc("file":L:C)`` or unknown."""
    display = display or (lambda p: p)
    out: list[str] = []
    i = 0
    while True:
        j = text.find("loc(", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        # `loc(` inside a string literal (e.g. a name) is rare; guard on the previous char.
        if j > 0 and (text[j - 1].isalnum() or text[j - 1] == "_"):
            out.append(text[i:j + 4])
            i = j + 4
            continue
        out.append(text[i:j])
        end = _matching_paren(text, j + 3)
        frame = pick_user_frame(text[j + 4:end], prefer_file)
        if frame is None:
            out.append("loc(unknown)")
        else:
            name = display(frame[0]).replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'loc("{name}":{frame[1]}:{frame[2]})')
        i = end + 1


# ---------------------------------------------------------------------------------
# Hex float literals

_FLOAT_DTYPES = {"f16": np.float16, "f32": np.float32, "f64": np.float64, "bf16": None}
_DENSE = re.compile(r"dense<(?!\")")
_LITERAL = re.compile(r"0x[0-9A-Fa-f]+|[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|inf|nan)")


def _matching_angle(text: str, open_index: int) -> int:
    depth = 0
    for k in range(open_index, len(text)):
        if text[k] == "<":
            depth += 1
        elif text[k] == ">":
            depth -= 1
            if depth == 0:
                return k
    raise ValueError("unbalanced '<'")


def _bf16_bytes(value: float) -> bytes:
    bits = struct.unpack("<I", struct.pack("<f", value))[0]
    return struct.pack("<H", (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16)


def fix_hex_float_literals(text: str) -> str:
    """Turn ``dense<0x..>`` / ``dense<[.., 0x.., ..]>`` of float type into a hex blob.

    MLIR writes non-finite (and some other) float elements as their bit pattern in
    hex; xDSL 0.75 parses those as integers and converts the *value*, giving e.g.
    4.29e9 instead of -inf. The quoted blob form ``dense<"0x...">`` carries raw
    little-endian bytes, which xDSL reads correctly.
    """
    out: list[str] = []
    i = 0
    for m in _DENSE.finditer(text):
        if m.start() < i:
            continue
        open_index = m.end() - 1
        close = _matching_angle(text, open_index)
        body = text[open_index + 1:close]
        rest = text[close + 1:close + 200]
        tm = re.match(r"\s*:\s*tensor<([^>]*)>", rest)
        if "0x" not in body or tm is None:
            continue
        dims = tm.group(1).split("x")
        elem = dims[-1]
        if elem not in _FLOAT_DTYPES:
            continue
        width = {"f16": 2, "bf16": 2, "f32": 4, "f64": 8}[elem]
        raw = bytearray()
        for tok in _LITERAL.findall(body):
            if tok.startswith("0x"):
                raw += int(tok, 16).to_bytes(width, "little")
            elif elem == "bf16":
                raw += _bf16_bytes(float(tok))
            else:
                raw += np.array(float(tok), dtype=_FLOAT_DTYPES[elem]).tobytes()
        out.append(text[i:m.start()])
        out.append(f'dense<"0x{raw.hex().upper()}">')
        i = close + 1
    out.append(text[i:])
    return "".join(out)


# ---------------------------------------------------------------------------------
# Parse / print


def parse_generic(text: str, source_name: str = "<input>") -> ModuleOp:
    """Parse generic-form MLIR text (already normalised) into an xDSL module."""
    text = fix_hex_float_literals(text)
    # xDSL prints an attribute with an empty body (`#stablehlo.dot<>`, a dot_general
    # without batch or contracting dimensions: an outer product) as `#stablehlo.dot`,
    # which MLIR rejects: spell the empty lists out.
    text = text.replace("#stablehlo.dot<>", "#stablehlo.dot<lhs_contracting_dimensions = [], "
                                            "rhs_contracting_dimensions = []>")
    try:
        module = Parser(make_context(), text, source_name).parse_module()
    except ParseError as e:
        first = str(e).strip().splitlines()
        raise TracecError(f"could not read the IR of {source_name}: {first[-1] if first else e}",
                          loc=SourceLoc(source_name),
                          hint="tracec reads StableHLO; run with --debug for the parser's message") from e
    return module


def print_generic(module: ModuleOp, *, debuginfo: bool = True) -> str:
    stream = io.StringIO()
    Printer(stream=stream, print_generic_format=True, print_debuginfo=debuginfo).print_op(module)
    stream.write("\n")
    return stream.getvalue()


def mlir_to_generic(mlir_module) -> str:
    """Generic form with inline locations from an MLIR-bindings module (jaxlib or iree)."""
    return mlir_module.operation.get_asm(enable_debug_info=True, print_generic_op_form=True,
                                         use_local_scope=True)


def read_mlir_file(path: str) -> str:
    """Read a ``.mlir`` or ``.mlirbc`` StableHLO file into generic text, any producer."""
    try:
        data = open(path, "rb").read()
    except OSError as e:
        raise TracecError(f"cannot read {path}: {e.strerror}") from e
    return mlir_to_generic_text(data if path.endswith(".mlirbc") else data.decode(),
                                display_path(path))


#: What generic-form IR starts with (after comments): tracec's own output at every stage.
_GENERIC_START = re.compile(r'\A(?:\s*//[^\n]*\n)*\s*"builtin\.module"\(\)')


def mlir_to_generic_text(source: str | bytes, name: str) -> str:
    """MLIR in any form (text, pretty or generic, or bytecode) as generic text, through
    MLIR's parser. MLIR verifies what it parses and cannot verify every op that sits in
    the region of an op it does not know (a ``stablehlo.composite`` inside ``tracec.scan``
    looks its decomposition up through the unknown op and fails): text already in generic
    form that MLIR rejects goes to the xDSL parser and verifier as it is."""
    from iree.compiler import ir

    with ir.Context() as ctx:
        ctx.allow_unregistered_dialects = True
        try:
            module = ir.Module.parse(source)
        except Exception as e:  # the bindings raise MLIRError with diagnostics
            if isinstance(source, str) and _GENERIC_START.match(source):
                return source
            msg = str(e).strip().splitlines()
            detail = next((m.strip() for m in msg if "error:" in m), msg[-1] if msg else "")
            raise TracecError(f"{name} is not valid MLIR: {detail}", loc=SourceLoc(name)) from e
        text = mlir_to_generic(module)
        if "dense_resource<" in text:
            text = inline_dense_resources(text, _resource_section(module), name)
    # The bindings name the parsed buffer "-"; ops without a loc() of their own get
    # their position in the file: name the file, so diagnostics point into it.
    shown = name.replace("\\", "\\\\").replace('"', '\\"')
    return text.replace('loc("-":', f'loc("{shown}":')


# ---------------------------------------------------------------------------------
# Constants whose data sits in the file's resource section

_RESOURCE_ENTRY = re.compile(r'(?:"((?:[^"\\]|\\.)*)"|([^\s:"{}]+))\s*:\s*"0x([0-9A-Fa-f]*)"')
_RESOURCE_REF = re.compile(r'dense_resource<(?:"((?:[^"\\]|\\.)*)"|([^>\s"]+))>')


def _resource_section(mlir_module) -> str:
    """The ``{-# dialect_resources: ... #-}`` section of an MLIR-bindings module (printed
    only with the module's own scope, not in the local-scope text tracec reads)."""
    text = mlir_module.operation.get_asm(enable_debug_info=False)
    start = text.rfind("{-#")
    return text[start:] if start >= 0 else ""


def inline_dense_resources(text: str, section: str, name: str) -> str:
    """Replace every ``dense_resource<key>`` by ``dense<"0x...">`` with the key's bytes.

    Producers write large constants (torch-mlir every tensor it freezes: parameters,
    buffers, constants of the model) as ``dense_resource`` whose bytes are in the
    ``builtin`` entry of the file's resource section, as hex after MLIR's 4-byte
    alignment header. Neither xDSL nor tracec's printed IR carries that section, so the
    bytes go inline. A constant without data (``__elided__``) is an error naming it."""
    blobs: dict[str, str] = {}
    builtin = re.search(r"\bbuiltin\s*:\s*\{", section)
    if builtin is not None:
        body = section[builtin.end():section.find("}", builtin.end())]
        for m in _RESOURCE_ENTRY.finditer(body):
            blobs[m.group(1) if m.group(1) is not None else m.group(2)] = m.group(3)[8:]

    def inline(m: re.Match) -> str:
        key = m.group(1) if m.group(1) is not None else m.group(2)
        if key not in blobs:
            raise TracecError(f"{name} has a constant dense_resource<{key}> whose data is not in "
                              "the file", loc=SourceLoc(name),
                              hint="write the file with its resources (not elided), or with the "
                                   "constants inline (dense<...>)")
        return f'dense<"0x{blobs[key].upper()}">'

    return _RESOURCE_REF.sub(inline, text)


def import_text(generic_text: str, *, source_file: str | None, source_name: str) -> ModuleOp:
    """Normalise locations to ``source_file`` and parse into xDSL."""
    text = normalize_locations(generic_text, prefer_file=source_file, display=display_path)
    return parse_generic(text, source_name)
