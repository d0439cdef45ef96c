"""The PNGs of benchmarks/side_by_side.py, drawn from its JSON records with matplotlib.

Runs with the benchmark venv's Python (matplotlib comes with braintrace's dependencies;
tracec does not depend on it); side_by_side.py calls it, or by hand::

    .venv-bench/bin/python benchmarks/plot_side_by_side.py benchmarks/results/side_by_side.json benchmarks/results

Writes memory_vs_T.png (peak RSS vs T, log x), time_vs_H.png (µs per training step vs
H for the lif networks, log-log) and learning_curves.png (test accuracy per update);
a figure without data is left out, with a line on stderr.
"""

from __future__ import annotations

import json
import os
import sys

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABEL = {("tracec", "es-d-rtrl"): "tracec ES-D-RTRL", ("tracec", "d-rtrl"): "tracec D-RTRL",
         ("tracec", "forward"): "tracec forward", ("jax", "bptt"): "JAX BPTT",
         ("jax", "forward"): "JAX forward", ("braintrace", "es-d-rtrl"): "braintrace pp_prop",
         ("braintrace", "d-rtrl"): "braintrace D_RTRL", ("brainstate", "bptt"): "brainstate BPTT"}
COLOR = {("tracec", "llvm-cpu"): "tab:blue", ("tracec", "xla"): "tab:orange", "jax": "tab:green",
         "braintrace": "tab:red", "brainstate": "tab:purple"}
MARKER = {"es-d-rtrl": "o", "d-rtrl": "s", "bptt": "^", "forward": "x"}
LINE = {"es-d-rtrl": "-", "d-rtrl": "--", "bptt": "-.", "forward": ":"}


def good(r: dict, field: str) -> bool:
    return field in r and "error" not in r and "skipped" not in r


def label(r: dict) -> str:
    name = LABEL.get((r["tool"], r["algorithm"]), f"{r['tool']} {r['algorithm']}")
    return f"{name} ({r['target']})" if r["tool"] == "tracec" else name


def series(recs: list[dict], x: str, y: str) -> dict[tuple, tuple[list, list]]:
    """(tool, algorithm, target) -> (xs, ys), sorted by x."""
    out: dict[tuple, list] = {}
    for r in recs:
        if good(r, y):
            out.setdefault((r["tool"], r["algorithm"], r["target"]), []).append((r[x], r[y]))
    return {k: tuple(map(list, zip(*sorted(v)))) for k, v in out.items()}


def style(tool: str, algorithm: str, target: str) -> dict:
    return {"color": COLOR.get((tool, target), COLOR.get(tool, "black")),
            "marker": MARKER.get(algorithm, "."), "linestyle": LINE.get(algorithm, "-")}


def save(fig, ax, path: str, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot_side_by_side: wrote {path}", file=sys.stderr)


def memory_vs_T(recs: list[dict], path: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (tool, alg, target), (Ts, mib) in series(recs, "T", "peak_rss_mib").items():
        r = next(r for r in recs if (r["tool"], r["algorithm"], r["target"]) == (tool, alg, target))
        ax.plot(Ts, mib, label=label(r), **style(tool, alg, target))
    ax.set_xscale("log")
    ax.set_xticks(sorted({r["T"] for r in recs}), [str(T) for T in sorted({r["T"] for r in recs})])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("sequence length T (steps per training call)")
    ax.set_ylabel("peak RSS of the process, MiB")
    r = recs[0]
    save(fig, ax, path, f"Peak memory vs T ({r['variant']} H={r['H']}, batch {r['batch']}; "
                        "one fresh process per point)")


def time_vs_H(recs: list[dict], path: str) -> None:
    lif = [r for r in recs if r["variant"] == "lif"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (tool, alg, target), (Hs, us) in series(lif, "H", "us_per_step_median").items():
        r = next(r for r in lif if (r["tool"], r["algorithm"], r["target"]) == (tool, alg, target))
        ax.plot(Hs, us, label=label(r), **style(tool, alg, target))
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({r["H"] for r in lif}), [str(H) for H in sorted({r["H"] for r in lif})])
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("neurons per layer H (2-layer recurrent LIF)")
    ax.set_ylabel("µs per time step (median)")
    save(fig, ax, path, f"Time per step vs H (batch {lif[0]['batch']}; training: reset, T steps, "
                        "one SGD step)")


def learning_curves(recs: list[dict], path: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in recs:
        if good(r, "accuracy"):
            n = len(r["accuracy"])
            ax.plot(range(1, n + 1), r["accuracy"], label=label(r), markevery=max(1, n // 10),
                    **style(r["tool"], r["algorithm"], r["target"]))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylim(0, 1)
    ax.set_xlabel("update (one sequence each)")
    ax.set_ylabel("test accuracy")
    r = recs[0]
    save(fig, ax, path, f"Learning curves, task {r['task']} (Adam lr {r['lr']:g}, model {r['model']})")


def main(argv: list[str]) -> int:
    json_path, out_dir = argv
    with open(json_path) as f:
        sections = json.load(f).get("sections", {})
    figures = {"memory": (memory_vs_T, "memory_vs_T.png", "peak_rss_mib"),
               "time": (time_vs_H, "time_vs_H.png", "us_per_step_median"),
               "accuracy": (learning_curves, "learning_curves.png", "accuracy")}
    for section, (draw, name, field) in figures.items():
        recs = [r for r in sections.get(section, {}).get("records", []) if good(r, field)]
        if section == "time":
            recs = [r for r in recs if r["variant"] == "lif"]
        if not recs:
            print(f"plot_side_by_side: no {section} records; {name} not drawn", file=sys.stderr)
            continue
        draw(recs, os.path.join(out_dir, name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
