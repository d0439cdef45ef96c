"""``tracec export-nir``: a model as a NIR graph, with the parameters a learner trained.

    tracec export-nir graph.nir --checkpoint trained.npz -o trained.nir

A model compiled from a NIR graph (``tracec graph.nir``) is written back as that graph
with every trainable field (Affine/Linear/Conv weights and biases, Scale factors) read
from the checkpoint (``Learner.save_checkpoint``: ``param:<node>/<field>``); everything
else (neuron constants, edges, shapes, metadata) is the graph's own, so the round trip is
exact. A ``model.py`` is read by tracec/nir_from_jax.py where its step is made of LIF
layers with a reset to zero, leaky readouts and weights; otherwise the error names the
construct and line that have no NIR node (docs/nir.md, "NIR out").
"""

from __future__ import annotations

import argparse
import hashlib
import os

import numpy as np

from tracec.diagnostics import TracecError, display_path


def trainable_fields(graph) -> dict[str, tuple]:
    """``<node>/<field>`` -> (owning nir node, field) of every trainable field, named as
    the compiled model names its parameters (frontends/nir_input.py)."""
    import nir

    from tracec.frontends.nir_input import TRAINABLE

    found: dict[str, tuple] = {}

    def walk(g, prefix: str) -> None:
        for name, node in g.nodes.items():
            if isinstance(node, nir.NIRGraph):
                walk(node, f"{prefix}{name}.")
            for f in TRAINABLE.get(type(node).__name__, ()):
                found[f"{prefix}{name}/{f}"] = (node, f)

    walk(graph, "")
    return found


def read_checkpoint_params(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(identity, {parameter name: array}) of a checkpoint written by
    ``Learner.save_checkpoint`` (or a checkpoint directory)."""
    from tracec.runtime.learner import CHECKPOINT_FORMAT, _read_checkpoint

    meta, arrays = _read_checkpoint(path)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise TracecError(f"{path} is not a tracec checkpoint",
                          hint="give a file written by Learner.save_checkpoint")
    params = {k.split(":", 1)[1]: v for k, v in arrays.items() if k.startswith("param:")}
    return meta.get("identity") or {}, params


def export_graph(graph, params: dict[str, np.ndarray], *, shown: str, checkpoint: str):
    """``graph`` with its trainable fields replaced by ``params`` (all of them, exact
    names and shapes, or a one-line error naming the checkpoint)."""
    fields = trainable_fields(graph)
    missing = sorted(set(fields) - set(params))
    extra = sorted(set(params) - set(fields))
    if missing or extra:
        what = (f"lacks {', '.join(missing)}" if missing else f"has {', '.join(extra)}, "
                "which the graph does not")
        raise TracecError(f"{checkpoint}: the checkpoint {what} ({shown} has the trainable "
                          f"fields {', '.join(sorted(fields)) or 'none'})",
                          hint="give the checkpoint of an artifact compiled from this graph")
    for name, (node, field) in fields.items():
        value = np.asarray(params[name], dtype=np.float32)
        old = np.asarray(getattr(node, field))
        if value.shape != old.shape and not (field == "bias" and old.ndim == 0):
            raise TracecError(f"{checkpoint}: parameter '{name}' has shape {list(value.shape)}, "
                              f"{shown} has {list(old.shape)}",
                              hint="give the checkpoint of an artifact compiled from this graph")
        setattr(node, field, value)
    return graph


def write_graph(graph, out: str) -> None:
    """``nir.write`` through a temporary file and a rename: a failed write leaves no
    half file and an earlier file stays."""
    import nir

    folder = os.path.dirname(os.path.abspath(out))
    tmp = os.path.join(folder, f".{os.path.basename(out)}.tmp{os.getpid()}")
    try:
        nir.write(tmp, graph)
        os.replace(tmp, out)
    except OSError as e:
        raise TracecError(f"cannot write {out}: {e.strerror or type(e).__name__}",
                          hint="give a file in a folder you can write to") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export_nir(model_path: str, out: str, checkpoint: str | None = None,
               dt: float = 1e-4) -> None:
    """Write the model of ``model_path`` (a .nir graph, or a model.py) as a NIR graph,
    with the checkpoint's parameters if one is given; ``dt`` turns a model.py's decay
    factors into time constants."""
    shown = display_path(model_path)
    if model_path.endswith(".nir"):
        from tracec.frontends.nir_input import Graph, read_graph

        graph = read_graph(model_path)
        Graph(graph, model_path)  # the same checks as compiling it
        if checkpoint is not None:
            identity, params = read_checkpoint_params(checkpoint)
            digest = hashlib.sha256(open(model_path, "rb").read()).hexdigest()
            if identity.get("source") not in (None, digest):
                raise TracecError(f"{checkpoint} was saved from an artifact compiled from "
                                  f"another file than {shown}",
                                  hint="give the .nir file the artifact was compiled from")
            export_graph(graph, params, shown=shown, checkpoint=checkpoint)
        write_graph(graph, out)
        return
    if model_path.endswith(".py"):
        from tracec.nir_from_jax import graph_of_model

        params = read_checkpoint_params(checkpoint)[1] if checkpoint is not None else None
        write_graph(graph_of_model(model_path, params, dt=dt, checkpoint=checkpoint or ""), out)
        return
    raise TracecError(f"export-nir: don't know how to read '{model_path}'",
                      hint="give the .nir graph or the model.py the artifact was compiled from")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tracec export-nir",
        description="Write a model as a NIR graph (docs/nir.md), with the parameters a "
                    "learner trained read from its checkpoint.")
    p.add_argument("model", help="the .nir graph or model.py the artifact was compiled from")
    p.add_argument("-o", "--output", required=True, help="the NIR file to write (.nir)")
    p.add_argument("--checkpoint", metavar="CKPT",
                   help="a checkpoint (Learner.save_checkpoint) whose parameters replace the "
                        "model's initial ones (default: none, the initial parameters)")
    p.add_argument("--dt", type=float, default=1e-4, metavar="SECONDS",
                   help="model.py: the time step its decay factors a become time constants "
                        "with, tau = dt/(1-a) (default: %(default)s)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def main(argv) -> int:
    args = parser().parse_args(argv)
    from tracec.fileio import refuse_overwriting_inputs

    refuse_overwriting_inputs(args.output, [args.model] + ([args.checkpoint] if args.checkpoint else []))
    export_nir(args.model, args.output, args.checkpoint, dt=args.dt)
    return 0
