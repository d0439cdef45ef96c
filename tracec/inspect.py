"""``tracec inspect MODEL``: what the compiler found in a model's recurrence.

Runs the frontend and the analysis passes (identify-recurrent-state,
find-hidden-groups, find-param-relations) and reports their IR attributes as a
table, as JSON (``--json``) or as a drawing (``--graph FILE.svg``).
"""

from __future__ import annotations

import html
import json

from tracec.diagnostics import TracecError

ANALYSES = ("extract-step,flatten-control-flow,identify-recurrent-state,find-hidden-groups,"
            "find-param-relations")


def analyse(source, model_name: str | None = None, seed: int = 0) -> dict:
    """The recurrence of a model (path or tracec.Model) as plain data."""
    from tracec.driver import compile as tracec_compile
    from tracec.driver import parse_pipeline, run_passes
    from tracec.passes.ir.module import from_attr, get_function

    art = tracec_compile(source, emit="stablehlo", model_name=model_name, seed=seed,
                         use_cache=False, keep_module=True)
    run_passes(art.module, parse_pipeline(ANALYSES), "tracec", None)
    step = get_function(art.module, "step", "inspect")
    attrs = step.attributes
    states = []
    from tracec.passes.ir.module import roles

    for (role, name), t in zip(roles(step.arg_attrs), step.function_type.inputs.data):
        if role == "state":
            states.append({"name": name, "shape": list(t.get_shape())})
    return {
        "groups": [{k: g[k] for k in ("states", "derived", "zero_recurrence")} | {"shape": g["shape"]}
                   for g in from_attr(attrs["tracec.groups"])],
        "relations": from_attr(attrs["tracec.relations"]),
        "readout_params": from_attr(attrs["tracec.readout_params"]),
        "cuts": from_attr(attrs["tracec.cuts"]),
        "edges": from_attr(attrs["tracec.edges"]),
        "states": states,
    }


def as_table(info: dict) -> str:
    lines = ["Hidden groups"]
    for i, g in enumerate(info["groups"]):
        derived = f"  derived: {', '.join(g['derived'])}" if g["derived"] else ""
        zero = "  (zero recurrence: D_t = 0)" if g["zero_recurrence"] else ""
        lines.append(f"  [{i}] {', '.join(g['states'])}  per-state shape {g['shape']}{derived}{zero}")
    lines.append("")
    lines.append("Parameter relations")
    width = max([len(r["param"]) for r in info["relations"]] + [5])
    for r in info["relations"]:
        x = f"x {r['x_shape']} -> " if "x_shape" in r else ""
        nnz = f"nnz {r['nnz']}  " if "nnz" in r else ""
        lines.append(f"  {r['param']:<{width}}  {r['kind']:<12} {nnz}{x}y {r['y_shape']}  "
                     f"-> group {', '.join(map(str, r['groups']))}   ({r['loc']})")
    if info["readout_params"]:
        lines.append(f"  readout (reach no hidden state): {', '.join(info['readout_params'])}")
    lines.append("")
    lines.append("Cut edges (not part of any group)")
    for c in info["cuts"]:
        lines.append(f"  {c['loc']}: {c['op']}: {c['reason']}: {', '.join(c['from'])} -> "
                     f"{', '.join(c['to']) or '(outputs only)'}")
    if not info["cuts"]:
        lines.append("  none")
    return "\n".join(lines) + "\n"


def as_svg(info: dict) -> str:
    """A small drawing: groups as boxes of states, element-wise edges, parameters and
    their relations, cut edges dashed."""
    box_w, row_h, gap = 220, 28, 24
    group_pos: dict[str, tuple[float, float]] = {}
    parts = []
    y = 40
    for i, g in enumerate(info["groups"]):
        members = g["states"] + g["derived"]
        h = row_h * len(members) + 30
        color = "#fff4e0" if g["zero_recurrence"] else "#e8f1ff"
        parts.append(f'<rect x="300" y="{y}" width="{box_w}" height="{h}" rx="8" fill="{color}" '
                     f'stroke="#446"/><text x="310" y="{y + 18}" font-weight="bold">group {i}'
                     f'{" (zero recurrence)" if g["zero_recurrence"] else ""}</text>')
        for j, name in enumerate(members):
            cy = y + 40 + j * row_h
            label = name + (" (derived)" if name in g["derived"] else "")
            parts.append(f'<circle cx="320" cy="{cy - 4}" r="6" fill="#446"/>'
                         f'<text x="334" y="{cy}">{html.escape(label)}</text>')
            group_pos[name] = (320, cy - 4)
        y += h + gap
    py = 40
    for r in info["relations"]:
        gy = []
        for gi in r["groups"]:
            first = info["groups"][gi]["states"][0]
            gy.append(group_pos[first])
        parts.append(f'<text x="20" y="{py}">{html.escape(r["param"])} ({r["kind"]})</text>')
        for (gx, gyy) in gy:
            parts.append(f'<line x1="200" y1="{py - 4}" x2="300" y2="{gyy}" stroke="#393" '
                         f'marker-end="url(#arrow)"/>')
        py += row_h
    for name in info["readout_params"]:
        parts.append(f'<text x="20" y="{py}" fill="#777">{html.escape(name)} (readout)</text>')
        py += row_h
    for e in info["edges"]:
        (x1, y1), (x2, y2) = group_pos[e["from"]], group_pos[e["to"]]
        if e["from"] == e["to"]:
            parts.append(f'<path d="M {x1 - 6} {y1} a 8 8 0 1 1 0 1" fill="none" stroke="#446"/>')
        else:
            parts.append(f'<path d="M {x1} {y1} C {x1 - 40} {y1}, {x2 - 40} {y2}, {x2 - 6} {y2}" '
                         f'fill="none" stroke="#446" marker-end="url(#arrow)"/>')
    for c in info["cuts"]:
        for a in c["from"]:
            for b in c["to"]:
                (x1, y1), (x2, y2) = group_pos[a], group_pos[b]
                parts.append(f'<path d="M {x1 + box_w - 40} {y1} C {x1 + box_w + 40} {y1}, '
                             f'{x2 + box_w + 40} {y2}, {x2 + box_w - 40} {y2}" fill="none" '
                             f'stroke="#c33" stroke-dasharray="5,4"><title>{html.escape(c["reason"])} '
                             f'({html.escape(c["loc"])})</title></path>')
    height = max(y, py) + 40
    legend = (f'<text x="20" y="{height - 14}" font-size="11" fill="#555">solid: element-wise '
              'dependence (old state to new state); green: parameter relations; red dashed: cut '
              '(mixing through a parameter, stop_gradient)</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{box_w + 780}" height="{height}" '
            'font-family="sans-serif" font-size="13"><defs><marker id="arrow" viewBox="0 0 10 10" '
            'refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto">'
            '<path d="M0,0 L10,5 L0,10 z" fill="#446"/></marker></defs>'
            + "".join(parts) + legend + "</svg>\n")


def write_graph(info: dict, path: str) -> None:
    from tracec.fileio import atomic_write

    svg = as_svg(info)
    if path.endswith(".svg"):
        atomic_write(path, svg)
        return
    if path.endswith(".png"):
        try:
            import cairosvg  # optional; not a tracec dependency
        except ImportError as e:
            raise TracecError("--graph FILE.png needs the optional package cairosvg",
                              hint="pip install cairosvg (it needs the Cairo library: "
                                   "apt-get install libcairo2), or write FILE.svg instead "
                                   "(any browser shows it)") from e
        atomic_write(path, cairosvg.svg2png(bytestring=svg.encode()))
        return
    raise TracecError(f"--graph: unknown format of '{path}'", hint="use a .svg (or .png) file name")


def main(argv: list[str]) -> int:
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="tracec inspect",
                                description="Show the recurrence tracec finds in a model.")
    p.add_argument("input", help="model.py or a StableHLO .mlir file")
    p.add_argument("--model", help="name of the tracec.Model, if the file has several")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--graph", metavar="FILE", help="draw the recurrence graph (.svg, or .png)")
    p.add_argument("--seed", type=int, default=0,
                   help="key given to init_params (default: %(default)s)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    info = analyse(args.input, args.model, args.seed)
    if args.graph:
        write_graph(info, args.graph)
    if args.json:
        public = {k: info[k] for k in ("groups", "relations", "readout_params", "cuts", "edges")}
        json.dump(public, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(as_table(info))
    return 0
