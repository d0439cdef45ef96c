"""benchmarks/side_by_side.py's records -> side_by_side.md: the table and the issue's targets.

``markdown(results)`` reads the JSON written by side_by_side.py (``{"sections": {name:
{"command", "date", "machine", "records"}}, "versions": ...}``) and needs nothing but the
standard library, so ``python -m benchmarks.side_by_side --report-only`` redoes it.
"""

from __future__ import annotations

import json
import statistics

# The targets (ratios of medians).
ES_SPEEDUP, DRTRL_SPEEDUP = 2.0, 10.0         # tracec vs braintrace, same rule, same network
ES_OVER_BPTT = 1.3                              # tracec ES-D-RTRL vs JAX BPTT, same network
ES_OVER_FORWARD, DRTRL_OVER_FORWARD = 2.5, 6.0  # tracec train step vs its own forward step
COLD_COMPILE_S, CACHED_COMPILE_S = 10.0, 0.5
FLAT_MIB = 16.0  # "flat in T": peak grows by at most this beyond the growth of the input xs

README_BEGIN, README_END = "<!-- side_by_side:begin -->", "<!-- side_by_side:end -->"

# Rows of the table within one network, in order: (tool, algorithm, target) -> label.
ROWS = {
    ("tracec", "forward", "llvm-cpu"): "tracec forward_sequence, llvm-cpu",
    ("tracec", "es-d-rtrl", "llvm-cpu"): "tracec ES-D-RTRL train_sequence, llvm-cpu",
    ("tracec", "d-rtrl", "llvm-cpu"): "tracec D-RTRL train_sequence, llvm-cpu",
    ("tracec", "forward", "xla"): "tracec forward_sequence, XLA",
    ("tracec", "es-d-rtrl", "xla"): "tracec ES-D-RTRL train_sequence, XLA",
    ("tracec", "d-rtrl", "xla"): "tracec D-RTRL train_sequence, XLA",
    ("jax", "forward", "jax.jit"): "JAX forward, jit(lax.scan)",
    ("jax", "bptt", "jax.jit"): "JAX BPTT, jit(value_and_grad(lax.scan))",
    ("braintrace", "es-d-rtrl", "jax.jit"): "braintrace pp_prop (ES-D-RTRL)",
    ("braintrace", "d-rtrl", "jax.jit"): "braintrace D_RTRL",
    ("brainstate", "bptt", "jax.jit"): "brainstate BPTT",
}
# The incumbent's row for the same rule.
BASELINE = {"es-d-rtrl": ("braintrace", "es-d-rtrl"), "d-rtrl": ("braintrace", "d-rtrl"),
            "bptt": ("brainstate", "bptt")}


INCUMBENT = ("braintrace", "brainstate")
# The networks written as braintrace's own examples write them (braintrace_side.py's
# build_idiomatic_net): only their ratios against braintrace count for the targets.
IDIOMATIC = ("lif_v", "alif_v")


def bt_versions(recs: list[dict]) -> list:
    """The braintrace releases measured (a record from every benchmark venv carries its
    ``braintrace_version``), oldest first; [None] for records from before there were two."""
    found = {r.get("braintrace_version") for r in recs if r["tool"] in INCUMBENT}
    named = sorted((v for v in found if v), key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()))
    return named or [None]


def bt_label(label: str, version) -> str:
    """'braintrace D_RTRL' -> 'braintrace 0.2.8 D_RTRL'; 'brainstate BPTT' -> 'brainstate BPTT
    (braintrace 0.2.8 venv)'."""
    if version is None:
        return label
    if label.startswith("braintrace "):
        return f"braintrace {version} " + label[len("braintrace "):]
    return f"{label} (braintrace {version} venv)"


def records(results: dict, section: str) -> list[dict]:
    return results.get("sections", {}).get(section, {}).get("records", [])


def find(recs: list[dict], **k) -> dict | None:
    return next((r for r in recs if all(r.get(f) == v for f, v in k.items())), None)


def ok(r: dict | None, field: str = "us_per_step_median") -> bool:
    return r is not None and field in r and "error" not in r and "skipped" not in r


def why_not(r: dict | None) -> str:
    """A cell without a number: why is listed once below the table (``problems``)."""
    if r is None:
        return "—"
    return "skipped" if "skipped" in r else "failed" if "error" in r else "—"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×"


def network_name(variant, H) -> str:
    return f"{variant} H={H}" if H is not None else str(variant)


# --------------------------------------------------------------------------- the table

def speedup(time_recs, r) -> str:
    """braintrace's µs/step over ours for the same rule and network (> 1: we are faster)."""
    if r["tool"] not in ("tracec", "jax") or r["algorithm"] not in BASELINE:
        return "—"
    if not ok(r):
        return "—"
    tool, alg = BASELINE[r["algorithm"]]
    versions = bt_versions(time_recs)
    cells = []
    for v in versions:
        base = find(time_recs, tool=tool, algorithm=alg, variant=r["variant"], H=r["H"],
                    braintrace_version=v)
        if not ok(base):
            cells.append(why_not(base))
            continue
        note = f" (theirs at T={base['T']})" if base["T"] != r["T"] else ""
        cells.append(ratio(base["us_per_step_median"], r["us_per_step_median"]) + note)
    if len(versions) == 1:
        return cells[0]
    return "; ".join(f"{c} vs {v}" for c, v in zip(cells, versions))


def over_forward(time_recs, r) -> str:
    if r["algorithm"] == "forward" or r["tool"] not in ("tracec", "jax"):
        return "—"
    fwd = find(time_recs, tool=r["tool"], algorithm="forward", target=r["target"], variant=r["variant"],
               H=r["H"])
    return ratio(r["us_per_step_median"], fwd["us_per_step_median"]) if ok(r) and ok(fwd) else "—"


def compile_cell(compile_recs, r: dict | None, k: tuple, variant, H) -> str:
    tool, alg, target = k
    c = find(compile_recs, tool=tool, algorithm=alg, target=target, variant=variant, H=H)
    if c is not None:
        if not ok(c, "cold_s"):
            return why_not(c)
        return f"{c['cold_s']:.1f} / {c['cached_s']:.2f} (new process {c['cached_new_process_s']:.2f})"
    if ok(r) and tool != "tracec":  # jit: first call minus a steady one (+ braintrace.compile)
        calls = r.get("call_s") or []
        steady = statistics.median(calls) if calls else 0.0
        return f"jit {r['first_call_s'] - steady + r.get('build_s', 0.0):.1f}"
    return "—"


def time_cell(r: dict | None) -> str:
    if not ok(r):
        return why_not(r)
    return f"{r['us_per_step_median']:.1f} [{r['us_per_step_min']:.1f}..{r['us_per_step_max']:.1f}]"


def memory_cell(memory_recs, k, variant, H, T, **more) -> str:
    tool, alg, target = k
    m = find(memory_recs, tool=tool, algorithm=alg, target=target, variant=variant, H=H, T=T, **more)
    if m is None:
        return "—"
    return f"{m['peak_rss_mib']:.0f}" if ok(m, "peak_rss_mib") else why_not(m)


def networks(results) -> list[tuple]:
    seen = []
    for section in ("time", "memory", "compile"):
        for r in records(results, section):
            if (r["variant"], r["H"]) not in seen:
                seen.append((r["variant"], r["H"]))
    return seen


def main_table(results) -> list[str]:
    time_recs, compile_recs = records(results, "time"), records(results, "compile")
    memory_recs = records(results, "memory")
    mem_T = sorted({r["T"] for r in memory_recs})
    head = (["network", "tool, rule, target", "T", "µs/step median [min..max]",
             "speed-up vs braintrace, same rule", "× own forward", "compile cold / cached s"]
            + [f"peak RSS MiB, T={T}" for T in mem_T])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    versions = bt_versions(time_recs + memory_recs)
    for variant, H in networks(results):
        for k, label in ROWS.items():
            tool, alg, target = k
            for v in versions if tool in INCUMBENT else [None]:
                vk = {"braintrace_version": v} if tool in INCUMBENT else {}
                r = find(time_recs, tool=tool, algorithm=alg, target=target, variant=variant, H=H, **vk)
                cells = [compile_cell(compile_recs, r, k, variant, H)]
                cells += [memory_cell(memory_recs, k, variant, H, T, **vk) for T in mem_T]
                if r is None and all(c == "—" for c in cells):
                    continue
                timing = ([str(r["T"]), time_cell(r), speedup(time_recs, r), over_forward(time_recs, r)]
                          if r is not None else ["—"] * 4)
                lines.append("| " + " | ".join([network_name(variant, H), bt_label(label, v), *timing,
                                                *cells]) + " |")
    return lines


def problems(results) -> list[str]:
    """The skipped and failed cells, grouped by their reason."""
    by_reason: dict[str, list[str]] = {}
    for section in results.get("sections", {}):
        for r in records(results, section):
            reason = (f"skipped: {r['skipped']}" if "skipped" in r
                      else f"failed: {r['error']}" if "error" in r else None)
            if reason:
                label = bt_label(ROWS.get((r["tool"], r["algorithm"], r["target"]),
                                          f"{r['tool']} {r['algorithm']}"), r.get("braintrace_version"))
                by_reason.setdefault(reason, []).append(
                    f"{section} {network_name(r['variant'], r['H'])} {label}"
                    + (f" T={r['T']}" if section == "memory" else ""))
    return [f"- {reason} ({'; '.join(cells)})" for reason, cells in by_reason.items()]


# --------------------------------------------------------------------------- targets

def verdict(values: list[tuple[str, float]], good) -> str:
    """'met' if every measured value passes ``good``, 'missed' if one does not."""
    if not values:
        return "not measured"
    return "**met**" if all(good(v) for _, v in values) else "**missed**"


def listing(values: list[tuple[str, float]], fmt) -> str:
    return "; ".join(f"{name} {fmt(v)}" for name, v in values) or "—"


def speedups(time_recs, alg: str) -> list[tuple[str, float]]:
    """tracec's speed-up over braintrace's newest release measured, on the networks that
    braintrace's examples write as measured (a slower form of the competitor is no target)."""
    newest = bt_versions(time_recs)[-1]
    out = []
    for r in time_recs:
        if r["tool"] == "tracec" and r["algorithm"] == alg and ok(r) and r["variant"] in IDIOMATIC:
            base = find(time_recs, tool="braintrace", algorithm=alg, variant=r["variant"], H=r["H"],
                        braintrace_version=newest)
            if ok(base):
                out.append((f"{network_name(r['variant'], r['H'])} {r['target']}",
                            base["us_per_step_median"] / r["us_per_step_median"]))
    return out


def over_bptt(time_recs, alg: str) -> list[tuple[str, float]]:
    """tracec's speed-up over JAX BPTT (``jit(value_and_grad)`` of the scan)."""
    out = []
    for r in time_recs:
        if r["tool"] == "tracec" and r["algorithm"] == alg and ok(r):
            base = find(time_recs, tool="jax", algorithm="bptt", variant=r["variant"], H=r["H"],
                        T=r["T"])
            if ok(base):
                out.append((f"{network_name(r['variant'], r['H'])} {r['target']}",
                            base["us_per_step_median"] / r["us_per_step_median"]))
    return out


def train_over_forward(time_recs, alg: str) -> list[tuple[str, float]]:
    out = []
    for r in time_recs:
        if r["tool"] == "tracec" and r["algorithm"] == alg and ok(r):
            fwd = find(time_recs, tool="tracec", algorithm="forward", target=r["target"],
                       variant=r["variant"], H=r["H"])
            if ok(fwd):
                out.append((f"{network_name(r['variant'], r['H'])} {r['target']}",
                            r["us_per_step_median"] / fwd["us_per_step_median"]))
    return out


def memory_growth(memory_recs, tool: str, alg: str) -> tuple[list[tuple[str, float]], dict | None]:
    """(peak growth beyond the input's growth from the smallest to the largest T, with its
    name), and the two records (for the slope)."""
    newest = bt_versions(memory_recs)[-1] if tool in INCUMBENT else None
    ms = sorted((r for r in memory_recs if r["tool"] == tool and r["algorithm"] == alg
                 and ok(r, "peak_rss_mib") and r.get("braintrace_version") == newest),
                key=lambda r: r["T"])
    if len(ms) < 2:
        return [], None
    lo, hi = ms[0], ms[-1]
    growth = hi["peak_rss_mib"] - lo["peak_rss_mib"]
    if not hi.get("chunk"):  # a streamed run never holds the whole input
        growth -= hi.get("input_mib", 0) - lo.get("input_mib", 0)
    name = f"{lo['peak_rss_mib']:.0f} → {hi['peak_rss_mib']:.0f} MiB for T {lo['T']} → {hi['T']}, growth"
    return [(name, growth)], {"lo": lo, "hi": hi}


def slope(pair) -> str:
    lo, hi = pair["lo"], pair["hi"]
    return f"{(hi['peak_rss_mib'] - lo['peak_rss_mib']) / (hi['T'] - lo['T']) * 1000:.1f} MiB per 1000 steps " \
           f"({lo['peak_rss_mib']:.0f} → {hi['peak_rss_mib']:.0f} MiB for T {lo['T']} → {hi['T']})"


def targets(results) -> list[str]:
    t, m, c = records(results, "time"), records(results, "memory"), records(results, "compile")
    lines = ["| target | verdict | measured |", "|---|---|---|"]

    def row(text, values, good, fmt=lambda v: f"{v:.2f}×"):
        lines.append(f"| {text} | {verdict(values, good)} | {listing(values, fmt)} |")

    bt = " ".join(["braintrace", *([bt_versions(t)[-1]] if bt_versions(t)[-1] else [])])
    row(f"ES-D-RTRL train step ≥ {ES_SPEEDUP:g}× faster than {bt} pp_prop",
        speedups(t, "es-d-rtrl"), lambda v: v >= ES_SPEEDUP)
    row(f"ES-D-RTRL train step ≥ {ES_OVER_BPTT:g}× faster than JAX BPTT",
        over_bptt(t, "es-d-rtrl"), lambda v: v >= ES_OVER_BPTT)
    row(f"D-RTRL train step ≥ {DRTRL_SPEEDUP:g}× faster than {bt} D_RTRL",
        speedups(t, "d-rtrl"), lambda v: v >= DRTRL_SPEEDUP)
    row(f"ES-D-RTRL train step ≤ {ES_OVER_FORWARD:g}× tracec's own forward step",
        train_over_forward(t, "es-d-rtrl"), lambda v: v <= ES_OVER_FORWARD)
    row(f"D-RTRL train step ≤ {DRTRL_OVER_FORWARD:g}× tracec's own forward step",
        train_over_forward(t, "d-rtrl"), lambda v: v <= DRTRL_OVER_FORWARD)
    for alg in ("es-d-rtrl", "d-rtrl"):
        values, _ = memory_growth(m, "tracec", alg)
        row(f"tracec {alg} peak memory flat in T (input streamed in chunks: grows ≤ {FLAT_MIB:g} MiB)",
            values, lambda v: v <= FLAT_MIB, lambda v: f"{round(v):+d} MiB")
    for tool, label in (("jax", "JAX BPTT"), ("brainstate", "brainstate BPTT")):
        _, pair = memory_growth(m, tool, "bptt")
        lines.append(f"| {label} memory, for comparison | slope | {slope(pair) if pair else '—'} |")
    for target in ("llvm-cpu", "xla"):
        cold = [(r["algorithm"], r["cold_s"]) for r in c if r["target"] == target and ok(r, "cold_s")]
        cached = [(r["algorithm"], r["cached_s"]) for r in c if r["target"] == target and ok(r, "cold_s")]
        row(f"cold compile of the example ≤ {COLD_COMPILE_S:g} s ({target})", cold,
            lambda v: v <= COLD_COMPILE_S, lambda v: f"{v:.1f} s")
        row(f"cached compile ≤ {CACHED_COMPILE_S:g} s ({target})", cached,
            lambda v: v <= CACHED_COMPILE_S, lambda v: f"{v:.2f} s")
    return lines


# --------------------------------------------------------------------------- accuracy

def accuracy_table(results) -> list[str]:
    recs = records(results, "accuracy")
    if not recs:
        return ["Not measured in this run (`--accuracy`)."]
    first = recs[0]
    lines = [f"Task `{first['task']}`, {first['iterations']} updates (one per sequence), Adam lr "
             f"{first['lr']:g}, model `{first['model']}` (braintrace: the same network, "
             f"{network_name(first['variant'], first['H'])}, built in braintrace_side.py); test "
             "accuracy on a fresh batch after each update.", "",
             "| tool, rule | final accuracy | mean of the last 10 | wall s |", "|---|---|---|---|"]
    for r in recs:
        label = ROWS.get((r["tool"], r["algorithm"], r["target"]), f"{r['tool']} {r['algorithm']}")
        if ok(r, "final_accuracy"):
            lines.append(f"| {label} | {r['final_accuracy']:.3f} | {r['accuracy_last10_mean']:.3f} | "
                         f"{r['wall_s']:.1f} |")
        else:
            lines.append(f"| {label} | {why_not(r)} | — | — |")
    return lines


# --------------------------------------------------------------------------- the page

NOTES = [
    "µs/step: one call of T steps (tracec `forward_sequence` / `train_sequence` with "
    "`--update-every T`, SGD or Adam as `--optimizer` says; JAX and braintrace: one jitted "
    "iteration: reset, T steps, the same optimizer's step) divided by T; median of the repeats after a first call that is left out, "
    "[min..max] of the repeats, the repeats of every pass (`--passes`, each over all networks "
    "and tools, so the machine's drift hits every tool alike) pooled. Batch 32, 40 inputs, 10 outputs, the networks of "
    "benchmarks/networks.py (tracec, JAX) and benchmarks/braintrace_side.py (braintrace), which "
    "are the same function (make parity); `lif_v` and `alif_v` are the lif network and an "
    "ALIF network as braintrace's own examples write them (braintrace_side.py's "
    "`build_idiomatic_net`), with a vmapped learner "
    "compiled inside the one jitted iteration. braintrace's rows come from each benchmark venv "
    "(0.2.6 on Python 3.11 and jax 0.10.2; the newest release on Python 3.12 and jax 0.12).",
    "speed-up vs braintrace: braintrace's µs/step over ours for the same rule on the same network "
    "(> 1: tracec is faster; JAX BPTT is compared with brainstate BPTT), per braintrace release "
    "measured. Where braintrace ran at another T (D_RTRL is slow, --bt-drtrl-T), the cell says so. "
    "Only `lif_v` and `alif_v` measure braintrace as its authors write a network, and only "
    "their speed-ups count for the targets; on `lif` and `alif` its "
    "network keeps the spike as a hidden state and feeds two braintrace.matmul, a slower form than "
    "its best, so their speed-ups overstate tracec's lead.",
    "× own forward: train µs/step over the same tool's forward µs/step on the same target.",
    "compile: `tracec.compile(examples/lif2.py)` in a fresh process with jax already imported: "
    "cold (empty TRACEC_CACHE_DIR) / cached in the same process (re-traces the model, then hits "
    "the cache) and cached in a new process. For JAX and braintrace rows, `jit` is the first "
    "call minus a steady one (tracing + XLA compile, + braintrace.compile's graph analysis).",
    "peak RSS: the peak resident memory (VmHWM) of one fresh process that trains once over T "
    "steps (memory network only; braintrace's process also ran the timing call); it includes "
    "the interpreter, the imported libraries and, for JAX and braintrace, the whole input xs "
    "(T·32·40 floats). tracec's rows feed the T steps as `train_sequence` calls of 50 steps, "
    "each chunk made when it is needed, as online data arrives (state, traces and counters "
    "stay on the device between calls); BPTT cannot do that, it needs the whole sequence.",
]


def header(results) -> list[str]:
    lines = []
    for name, s in results.get("sections", {}).items():
        m = s.get("machine", {})
        lines.append(f"- {name}: `{s['command']}` ({s['date']}; {m.get('cpu')}, {m.get('cores')} cores, "
                     f"load average {', '.join(f'{x:.1f}' for x in m.get('load_average') or [])})")
    return lines


def markdown(results: dict) -> str:
    lines = ["# tracec vs braintrace vs JAX BPTT, side by side", "",
             "Written by `python -m benchmarks.side_by_side` (benchmarks/side_by_side.py); raw records "
             "in side_by_side.json; plots memory_vs_T.png, time_vs_H.png, learning_curves.png.", "",
             "Sections and the commands that measured them:", "", *header(results), "",
             "## Targets", "", *targets(results), "",
             "## Time per step, compile time, peak memory", "", *main_table(results), "",
             *[f"- {n}" for n in NOTES], "",
             *(["Skipped or failed cells:", "", *problems(results), ""] if problems(results) else []),
             "## Accuracy after a fixed number of updates", "", *accuracy_table(results), "",
             "## Versions", "", "```json", json.dumps(results.get("versions", {}), indent=1), "```", ""]
    return "\n".join(lines)


def readme_block(results: dict, page: str = "benchmarks/results/side_by_side.md") -> str:
    dates = sorted(s["date"] for s in results["sections"].values())
    commands = sorted({s["command"] for s in results["sections"].values()})
    return "\n".join([f"{'; '.join(f'`{c}`' for c in commands)}, measured {dates[0][:10]}"
                      f"{'' if dates[0][:10] == dates[-1][:10] else ' to ' + dates[-1][:10]}; the full "
                      f"page with notes and versions: `{page}`.",
                      "", *[t for t in targets(results)  # the targets this run measured
                            if "| not measured |" not in t and "| slope | — |" not in t],
                      "", *main_table(results), ""])
