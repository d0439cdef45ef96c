"""``tracec plan m.vmfb -o DIR``: everything needed to run and train an artifact with
IREE's ``iree-run-module`` alone, no Python (docs/deploy.md).

DIR gets:

- ``model.vmfb``: a copy of the artifact;
- ``init/``: a fresh learner as a checkpoint directory (``checkpoint.json`` and
  ``v<i>.npy`` for the i-th carried ``role:name`` in sorted order), the values the
  Python runtime starts from: ``init_params``, ``init_state``, zeros for traces,
  optimizer state, accumulators and counters. Parameters and state come from running
  the artifact here when it runs on this machine; an artifact for another machine
  (``--target-triple``, a GPU) gets them from its own ``init_params`` / ``init_state``
  on the device, the first time the driver makes a checkpoint there;
- ``run.sh``: the POSIX sh driver (``init``, ``train``, ``forward``), its calling
  convention filled in from the manifest (tracec/plan_driver.py is the template).

Checkpoint directories are what ``Learner.load_checkpoint`` reads besides ``.npz``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import tempfile

import numpy as np

from tracec.diagnostics import TracecError
from tracec.fileio import atomic_write

#: carried values: manifest list -> role (the order of checkpoint keys is sorted)
CARRIED_LISTS = ("params", "state", "traces", "optimizer_state", "accumulators", "counters")
#: numpy dtype -> (npy descr, IREE element type) the driver can pass to iree-run-module
ELEMENT_TYPES = {"float32": ("<f4", "f32"), "float16": ("<f2", "f16"), "int32": ("<i4", "i32"),
                 "int16": ("<i2", "i16"), "int8": ("|i1", "i8"), "uint8": ("|u1", "ui8")}
DEFAULT_CHUNK = 64
_PLAN_MARK = "# Written by `tracec plan`"


def _key(spec: dict) -> str:
    return f"{spec['role']}:{spec['name']}"


def read_artifact(path: str) -> tuple[bytes, dict]:
    """The artifact's bytes (as on disk) and its manifest, read without a device."""
    import iree.runtime as rt

    from tracec.runtime.artifact import ArtifactError, parse_manifest, sniff, unseal

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TracecError(f"cannot read {path}: {e.strerror}") from e
    body = unseal(path, data)
    if sniff(path, body) == "xla":
        raise TracecError(f"{path} is an XLA artifact: it runs only through tracec.runtime",
                          hint="compile for an IREE target (llvm-cpu, vulkan, cuda, ...) "
                               "to run it with iree-run-module")
    try:
        module = rt.VmModule.copy_buffer(rt.VmInstance(), body)
    except (ValueError, RuntimeError) as e:
        raise ArtifactError(f"{path} is truncated or corrupted: IREE cannot load it",
                            hint="recompile the model") from e
    fn = module.lookup_function("forward")
    text = fn.reflection.get("tracec.manifest") if fn is not None else None
    return data, parse_manifest(path, text)


def runs_here(manifest: dict) -> bool:
    """Whether this machine runs the artifact's code (so the plan can compute its
    initial values here): a CPU artifact for this CPU's architecture."""
    target = manifest.get("target")
    if target == "vmvx":
        return True
    if target != "llvm-cpu":
        return False  # a GPU's artifact: its initial values are computed on its device
    triple = (manifest.get("options") or {}).get("target_triple") or ""
    if not triple:
        return True
    arch = triple.split("-", 1)[0]
    machine = platform.machine().lower()
    same = {("x86_64", "amd64"), ("aarch64", "arm64")}
    return arch == machine or (arch, machine) in same or (machine, arch) in same


def _names(entry: dict, part: str, role_prefixes=None) -> list[str]:
    keys = entry[part]
    if role_prefixes is None:
        return keys
    return [k for k in keys if k.split(":", 1)[0] in role_prefixes]


def _element(spec: dict, what: str) -> tuple[str, str]:
    dtype = str(np.dtype(spec["dtype"]))
    if dtype not in ELEMENT_TYPES:
        raise TracecError(f"the {what} has dtype {dtype}, which the sh driver cannot pass "
                          "to iree-run-module",
                          hint=f"supported: {', '.join(ELEMENT_TYPES)}")
    return ELEMENT_TYPES[dtype]


def _step_fields(spec: dict, what: str, prefix: str) -> dict:
    """The driver's fields for a per-step tensor [T, *shape]."""
    descr, etype = _element(spec, what)
    shape = [int(d) for d in spec["shape"]]
    return {f"{prefix}_DESCR": descr,
            f"{prefix}_TAIL": ",".join(map(str, shape)),
            f"{prefix}_TYPE": "".join(f"{d}x" for d in shape) + etype,
            f"{prefix}_ROW": str(int(np.prod(shape, dtype=np.int64)) * np.dtype(spec["dtype"]).itemsize)}


def _output_file_names(outputs: list[dict]) -> list[str]:
    """Output names as sh identifiers and file names (``output/0`` -> ``output_0``)."""
    names: list[str] = []
    for spec in outputs:
        base = re.sub(r"[^A-Za-z0-9_]", "_", spec["name"]) or "output"
        if base[0].isdigit():
            base = f"o{base}"
        name, i = base, 1
        while name in names:
            name, i = f"{base}_{i}", i + 1
        names.append(name)
    return names


def driver_fields(manifest: dict, index: dict[str, int], chunk: int, model: str) -> dict:
    """The values of the template's @@NAME@@ fields for this manifest."""
    from tracec.runtime.iree_executor import DRIVERS

    entries = manifest["entries"]
    carried_roles = {k.split(":", 1)[0] for k in index}
    v = lambda keys: " ".join(f"v{index[k]}" for k in keys)  # noqa: E731
    fwd = entries["forward_sequence"]
    fields = {
        "MODEL": model, "ALGORITHM": manifest.get("algorithm", "forward"),
        "TARGET": str(manifest.get("target")), "DEVICE": DRIVERS.get(manifest.get("target"), "local-sync"),
        "CHUNK": str(chunk),
        "FWD_ARGS": v(_names(fwd, "args", carried_roles)),
        "FWD_RESULTS": v(_names(fwd, "results", carried_roles)),
        "INIT_PARAMS": v(entries["init_params"]["results"]),
        "INIT_STATE": v(entries["init_state"]["results"]),
    }
    specs = {_key(s): s for lst in CARRIED_LISTS for s in manifest.get(lst, [])}
    fields["FLOAT_VALUES"] = " ".join(f"v{index[k]}" for k in sorted(index, key=index.get)
                                      if np.dtype(specs[k]["dtype"]) == np.float32)
    fields.update(_step_fields(manifest["input"], "input", "X"))
    fields["X_SHOW"] = ", ".join(map(str, manifest["input"]["shape"]))
    train = entries.get("train_sequence")
    target = (manifest.get("source") or {}).get("target")
    if train is not None and isinstance(target, dict):
        fields.update({"TRAIN": "yes", "TRAIN_ARGS": v(_names(train, "args", carried_roles)),
                       "TRAIN_RESULTS": v(_names(train, "results", carried_roles))})
        fields.update(_step_fields(target, "target", "Y"))
        fields["Y_SHOW"] = ", ".join(map(str, target["shape"]))
    else:
        fields.update({"TRAIN": "no", "TRAIN_ARGS": "", "TRAIN_RESULTS": "", "Y_DESCR": "",
                       "Y_TAIL": "", "Y_TYPE": "", "Y_ROW": "0", "Y_SHOW": "no targets"})
    outputs = manifest["outputs"]
    names = _output_file_names(outputs)
    fields["OUTPUTS"] = " ".join(names)
    fields["OUT_FILES"] = ", ".join(f"{n}.npy" for n in names)
    lines = []
    for name, spec in zip(names, outputs):
        descr, _ = _element(spec, f"output '{spec['name']}'")
        lines.append(f"DESCR_{name}='{descr}' TAIL_{name}='{','.join(map(str, spec['shape']))}'")
    fields["OUTPUT_SPECS"] = "\n".join(lines)
    return fields


def render_driver(fields: dict) -> str:
    from tracec.plan_driver import TEMPLATE

    text = TEMPLATE.replace("#!/bin/sh\n", f"#!/bin/sh\n{_PLAN_MARK} from {fields['MODEL']}.\n", 1)
    for name, value in fields.items():
        text = text.replace(f"@@{name}@@", value)
    left = re.findall(r"@@[A-Z_]+@@", text)
    if left:
        raise TracecError(f"internal: the driver template has unfilled fields {left}")
    return text


def _initial_values(path: str, manifest: dict, keys: list[str]) -> tuple[dict, bool]:
    """({role:name: array}, whether params and state are included): a fresh Learner's
    values when the artifact runs here, else zeros for all but params and state."""
    from tracec.runtime.learner import _read_checkpoint, load

    if runs_here(manifest):
        learner = load(path)
        with tempfile.TemporaryDirectory(prefix="tracec-plan-") as tmp:
            ckpt = os.path.join(tmp, "fresh.npz")
            learner.save_checkpoint(ckpt)
            _, arrays = _read_checkpoint(ckpt)
        return arrays, True
    specs = {_key(s): s for lst in CARRIED_LISTS for s in manifest.get(lst, [])}
    arrays = {k: np.zeros(specs[k]["shape"], np.dtype(specs[k]["dtype"])) for k in keys
              if specs[k]["role"] not in ("param", "state")}
    return arrays, False


def write_plan(artifact: str, out_dir: str, chunk: int = DEFAULT_CHUNK) -> dict:
    """Write the plan of ``artifact`` into ``out_dir``; returns a summary."""
    from tracec.runtime.learner import CHECKPOINT_DIR_META, checkpoint_meta

    if not isinstance(chunk, int) or chunk < 1:
        raise TracecError(f"--chunk must be a positive integer, got {chunk!r}")
    data, manifest = read_artifact(artifact)
    if "batch_shards" in manifest:  # the driver would train one part, never updating
        raise TracecError(f"{artifact} was compiled with --batch-shards "
                          f"{manifest['batch_shards'].get('parts')}: its parts run together "
                          "in tracec.runtime only",
                          hint="compile without --batch-shards for iree-run-module")
    for entry in ("init_params", "init_state", "forward_sequence"):
        if entry not in manifest["entries"]:
            raise TracecError(f"{artifact} has no entry '{entry}'", hint="recompile it with this tracec")
    _check_out_dir(out_dir)
    keys = sorted(_key(s) for lst in CARRIED_LISTS for s in manifest.get(lst, []))
    index = {k: i for i, k in enumerate(keys)}
    model = os.path.basename((manifest.get("source") or {}).get("file") or artifact)
    fields = driver_fields(manifest, index, chunk, model)
    arrays, complete = _initial_values(artifact, manifest, keys)

    init = os.path.join(out_dir, "init")
    os.makedirs(init, exist_ok=True)
    for name in os.listdir(init):  # an earlier plan's values
        if re.fullmatch(r"v\d+\.npy|checkpoint\.json", name):
            os.unlink(os.path.join(init, name))
    for key, arr in arrays.items():
        buf = _npy_bytes(arr)
        atomic_write(os.path.join(init, f"v{index[key]}.npy"), buf)
    atomic_write(os.path.join(out_dir, "model.vmfb"), data)
    atomic_write(os.path.join(out_dir, "run.sh"), render_driver(fields))
    os.chmod(os.path.join(out_dir, "run.sh"), 0o755)
    meta = checkpoint_meta(manifest, 0, keys)
    atomic_write(os.path.join(init, CHECKPOINT_DIR_META), json.dumps(meta) + "\n")
    return {"dir": out_dir, "values": len(keys), "init_complete": complete,
            "train": fields["TRAIN"] == "yes", "device": fields["DEVICE"]}


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr) if arr.ndim else arr, allow_pickle=False)
    return buf.getvalue()


def _check_out_dir(out_dir: str) -> None:
    """``out_dir`` is new, empty, or an earlier plan (whose files are replaced)."""
    if not os.path.exists(out_dir):
        try:
            os.makedirs(out_dir)
        except OSError as e:
            raise TracecError(f"-o: cannot create {out_dir}: {e.strerror}") from e
        return
    if not os.path.isdir(out_dir):
        raise TracecError(f"-o {out_dir} exists and is not a directory",
                          hint="give a new folder for the plan")
    entries = set(os.listdir(out_dir))
    if not entries:
        return
    driver = os.path.join(out_dir, "run.sh")
    earlier = False
    if os.path.isfile(driver):
        with open(driver, errors="replace") as f:
            earlier = _PLAN_MARK in f.read(400)
    if not earlier:
        raise TracecError(f"-o {out_dir} is a folder with other files in it",
                          hint="give a new or empty folder (an earlier plan is replaced)")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="tracec plan",
        description="Write what it takes to run and train an IREE artifact with "
                    "iree-run-module and a POSIX sh, no Python: a copy of the artifact, a "
                    "fresh learner's values (init/) and the driver run.sh "
                    "(sh DIR/run.sh train CKPT XS.npy TARGETS.npy). See docs/deploy.md.")
    p.add_argument("artifact", help="a .vmfb written by tracec")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="folder to write (new, empty, or an earlier plan, which is replaced)")
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, metavar="N",
                   help="time steps per iree-run-module call, the driver's default "
                        "(run.sh -c N overrides it) (default: %(default)s)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    summary = write_plan(args.artifact, args.output, args.chunk)
    where = ("here" if summary["init_complete"] else
             "on the device the first time run.sh makes a checkpoint")
    print(f"wrote {args.output}: model.vmfb, init/ ({summary['values']} values; parameters and "
          f"state computed {where}), run.sh (device {summary['device']}"
          + ("; train and forward)" if summary["train"] else "; forward only)"))
    return 0
