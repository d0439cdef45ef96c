"""The command lines: stages, IR inspection, pass registry, cache, and errors for people."""

from __future__ import annotations

import os


from conftest import ROOT, run_cli

LIF2 = os.path.join("examples", "lif2.py")


def _one_line_error(proc, *fragments):
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def test_emit_stablehlo_is_accepted_by_jaxlib():
    proc = run_cli(LIF2, "--emit", "stablehlo", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    from jax._src.interpreters import mlir as jax_mlir
    from jaxlib.mlir import ir

    with jax_mlir.make_ir_context():
        module = ir.Module.parse(proc.stdout)
    text = str(module)
    assert "stablehlo.composite" in text and "func.func private @step" in text


def test_print_ir_after_all_shows_every_pass(tmp_path):
    from tracec.driver import stage_passes
    from tracec.options import CompileOptions

    proc = run_cli(LIF2, "--emit", "iree-input", "--print-ir-after-all", "-o", str(tmp_path / "out.mlir"))
    assert proc.returncode == 0, proc.stderr
    expected = []
    for stage in ("stablehlo", "tracec", "iree-input"):
        expected += [p.name for p in stage_passes(CompileOptions(), stage)]
    shown = [line.split("After ")[1].split(" ")[0] for line in proc.stderr.splitlines()
             if line.startswith("// -----// IR Dump After")]
    assert shown == expected


def test_print_ir_after_one_pass(tmp_path):
    proc = run_cli(LIF2, "--emit", "tracec", "--print-ir-after", "make-entry-points", "-o", str(tmp_path / "out.mlir"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("IR Dump After") == 1
    assert '"tracec.scan"' in proc.stderr


def test_dump_dir_writes_one_numbered_file_per_pass(tmp_path):
    proc = run_cli(LIF2, "--emit", "iree-input", "--dump-dir", str(tmp_path / "dump"), "-o", str(tmp_path / "out.mlir"))
    assert proc.returncode == 0, proc.stderr
    files = sorted(os.listdir(tmp_path / "dump"))
    assert files[0] == "00-import.mlir"
    assert files[1:] == ["01-strip-sharding.mlir", "02-inline-private-functions.mlir",
                         "03-extract-step.mlir", "04-check-backend-ops.mlir",
                         "05-make-entry-points.mlir", "06-event-driven-relations.mlir",
                         "07-lower-scan-to-iree.mlir", "08-lower-traces-to-stablehlo.mlir",
                         "09-leading-sums-to-dot.mlir", "10-algebraic-simplify.mlir",
                         "11-fusion-barriers-to-iree.mlir", "12-guard-scatter-indices.mlir",
                         "13-strip-tracec-attributes.mlir"]


def test_list_passes_and_pipeline():
    proc = run_cli("--list-passes")
    assert proc.returncode == 0
    for name in ("strip-sharding", "inline-private-functions", "make-entry-points",
                 "lower-scan-to-iree", "lower-scan-to-stablehlo"):
        assert name in proc.stdout
    proc = run_cli(LIF2, "-p", "strip-sharding,inline-private-functions", "--emit", "tracec")
    assert proc.returncode == 0, proc.stderr
    assert "func.func" in proc.stdout and "tracec.scan" not in proc.stdout


def test_unknown_pass_in_pipeline():
    _one_line_error(run_cli(LIF2, "-p", "strip-sharding,no-such-pass", "-o", "x.vmfb"),
                    "unknown pass", "no-such-pass", "--list-passes")


def test_tracec_opt_runs_registered_passes(tmp_path):
    proc = run_cli(LIF2, "--emit", "stablehlo", "-o", str(tmp_path / "in.mlir"))
    assert proc.returncode == 0, proc.stderr
    out = run_cli(str(tmp_path / "in.mlir"), "-p", "make-entry-points,lower-scan-to-stablehlo",
                  prog="tracec-opt")
    assert out.returncode == 0, out.stderr
    assert '"stablehlo.while"' in out.stdout and "forward_sequence" in out.stdout
    bad = run_cli(str(tmp_path / "in.mlir"), "-p", "bogus", prog="tracec-opt")
    _one_line_error(bad, "unknown pass", "bogus")


def test_tracec_opt_continues_from_the_tracec_stage(tmp_path):
    """`--emit tracec` output (tracec.scan bodies holding the tracec.spike composite, which
    MLIR's own verifier rejects there) reads back into tracec-opt, from a file and from
    stdin, and its backend stage run by hand gives the compiler's `--emit iree-input` byte
    for byte."""
    from tracec.driver import pipeline_text, stage_passes
    from tracec.options import CompileOptions

    common = ("--algorithm", "es-d-rtrl", "--no-cache")
    tracec_ir, iree_ir = tmp_path / "t.mlir", tmp_path / "i.mlir"
    for stage, path in (("tracec", tracec_ir), ("iree-input", iree_ir)):
        proc = run_cli(LIF2, *common, "--emit", stage, "-o", str(path))
        assert proc.returncode == 0, proc.stderr
    assert '"tracec.scan"' in tracec_ir.read_text() and "tracec.spike" in tracec_ir.read_text()
    pipeline = pipeline_text(stage_passes(CompileOptions(algorithm="es-d-rtrl"), "iree-input"))
    out = run_cli(str(tracec_ir), "-p", pipeline, prog="tracec-opt")
    assert out.returncode == 0, out.stderr
    assert out.stdout == iree_ir.read_text()
    piped = run_cli("-", "-p", "lower-traces-to-stablehlo", prog="tracec-opt",
                    input=tracec_ir.read_text())
    assert piped.returncode == 0, piped.stderr
    assert '"tracec.param_trace"' not in piped.stdout and '"tracec.input_trace"' not in piped.stdout


def test_syntax_error_names_file_and_line():
    line = _one_line_error(run_cli(os.path.join("tests", "models", "syntax_error.py"), "-o", "x.vmfb"),
                           "syntax error")
    assert line.startswith("tests/models/syntax_error.py:3:")


def test_no_model_and_two_models():
    _one_line_error(run_cli(os.path.join("tests", "models", "no_model.py"), "-o", "x.vmfb"),
                    "tests/models/no_model.py", "no tracec.Model found")
    _one_line_error(run_cli(os.path.join("tests", "models", "two_models.py"), "-o", "x.vmfb"),
                    "2 tracec.Model objects", "--model NAME")
    proc = run_cli(os.path.join("tests", "models", "two_models.py"), "--model", "model_b",
                   "--emit", "stablehlo")
    assert proc.returncode == 0, proc.stderr


def test_exception_in_model_names_line():
    line = _one_line_error(run_cli(os.path.join("tests", "models", "raises.py"), "-o", "x.vmfb"),
                           "dot_general requires contracting dimensions")
    assert line.startswith("tests/models/raises.py:12:")


def test_op_the_backend_cannot_compile_names_op_and_line(tmp_path):
    out = tmp_path / "linalg.vmfb"
    line = _one_line_error(run_cli(os.path.join("tests", "models", "linalg_op.py"), "-o", str(out),
                                   "--no-cache"),
                           "stablehlo.custom_call", "lapack")
    assert line.startswith("tests/models/linalg_op.py:10:")
    assert not out.exists()


def test_debug_shows_traceback():
    proc = run_cli(os.path.join("tests", "models", "no_model.py"), "-o", "x.vmfb", "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_failed_compile_keeps_previous_output(tmp_path):
    out = tmp_path / "model.vmfb"
    out.write_bytes(b"previous good artifact")
    _one_line_error(run_cli(os.path.join("tests", "models", "linalg_op.py"), "-o", str(out)),
                    "custom call")
    assert out.read_bytes() == b"previous good artifact"
    assert os.listdir(tmp_path) == ["model.vmfb"]  # no temporary left behind


def test_bad_option_values():
    _one_line_error(run_cli(LIF2, "--decay", "1.5", "-o", "x.vmfb"),
                    "decay (--decay) must be in [0, 1)")
    _one_line_error(run_cli(LIF2, "--lr", "-1", "-o", "x.vmfb"), "lr (--lr) must be a positive")
    _one_line_error(run_cli(LIF2, "--scan-unroll", "0", "-o", "x.vmfb"),
                    "scan_unroll (--scan-unroll) must be an integer >= 1")
    _one_line_error(run_cli(LIF2, "--skip-masked-steps", "-o", "x.vmfb"),
                    "skip_masked_steps (--skip-masked-steps) needs a learning rule")


def test_compile_cache_hit_and_bypass(tmp_path):
    env = {"TRACEC_CACHE_DIR": str(tmp_path / "cache")}
    a = run_cli(LIF2, "-o", str(tmp_path / "a.vmfb"), env=env)
    assert a.returncode == 0, a.stderr
    entries = os.listdir(tmp_path / "cache")
    assert len(entries) == 2  # binary + metadata
    import tracec

    os.environ["TRACEC_CACHE_DIR"], saved = env["TRACEC_CACHE_DIR"], os.environ.get("TRACEC_CACHE_DIR")
    try:
        art = tracec.compile(os.path.join(ROOT, LIF2))
        assert art.from_cache and art.binary == (tmp_path / "a.vmfb").read_bytes()
        assert not tracec.compile(os.path.join(ROOT, LIF2), use_cache=False).from_cache
        assert not tracec.compile(os.path.join(ROOT, LIF2), seed=5).from_cache  # options are in the key
    finally:
        os.environ["TRACEC_CACHE_DIR"] = saved
    # A damaged cache entry is a miss, never a wrong artifact.
    binary = [e for e in entries if e.endswith(".bin")][0]
    (tmp_path / "cache" / binary).write_bytes(b"garbage")
    b = run_cli(LIF2, "-o", str(tmp_path / "b.vmfb"), env=env)
    assert b.returncode == 0 and (tmp_path / "b.vmfb").read_bytes() == (tmp_path / "a.vmfb").read_bytes()


def test_cache_key_holds_every_pass_option(monkeypatch):
    """With the default pipeline the key holds the passes as run: a module switch that
    reaches a pass without being a compile option (tracec.options.ROW_GRADIENTS) changes
    it, so an artifact built with the switch on is never served with it off."""
    import tracec.options
    from tracec.driver import _cache_key
    from tracec.options import CompileOptions

    opts = CompileOptions(algorithm="d-rtrl", update_every=8)
    off = _cache_key("module {}", opts, None, {})
    monkeypatch.setattr(tracec.options, "ROW_GRADIENTS", True)
    on = _cache_key("module {}", opts, None, {})
    assert on != off
    assert _cache_key("module {}", opts, None, {}) == on
    monkeypatch.setattr(tracec.options, "ROW_GRADIENTS", False)
    assert _cache_key("module {}", opts, None, {}) == off


def test_gpu_and_cross_targets_compile_without_a_gpu(tmp_path):
    for flags in (["--target", "cuda"], ["--target", "rocm"], ["--target", "vulkan"],
                  ["--target-triple", "aarch64-linux-gnu"]):
        out = tmp_path / "m.vmfb"
        proc = run_cli(LIF2, "-o", str(out), *flags)
        assert proc.returncode == 0, (flags, proc.stderr)
        data = out.read_bytes()
        assert data[:4] == b"PK\x03\x04" and b"IREE" in data[:256]
        out.unlink()


def test_bare_heaviside_warns_with_the_line(tmp_path):
    proc = run_cli(os.path.join("tests", "models", "bare_heaviside.py"), "--algorithm", "d-rtrl",
                   "-o", str(tmp_path / "m.vmfb"), "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("tests/models/bare_heaviside.py:6:8: warning: a bare Heaviside")
    assert (tmp_path / "m.vmfb").exists()


def test_benign_iree_warnings_are_dropped_and_others_kept():
    """Aggressive fusion reports a consumer left in its own dispatch as a warning at the
    model's line; that says nothing to a user and is dropped with its excerpt and notes.
    Any other IREE warning reaches stderr unchanged."""
    from tracec.backends import _without_benign

    benign = ("examples/lif2.py:40:27: warning: failed to move consumer into region\n"
              "    v = TAU_MEM * s[\"v\"]\n"
              "        ^\n"
              "examples/lif2.py:46:1: note: called from\n"
              "def step(params, state, x):\n"
              "^\n")
    other = "m.py:3:1: warning: something a user should see\n  x = y\n  ^\n"
    assert _without_benign(benign) == ""
    assert _without_benign(benign + other + benign) == other
    assert _without_benign(other + "m.py:4:1: note: from here\n") == other + "m.py:4:1: note: from here\n"


def test_training_compile_prints_nothing(tmp_path):
    proc = run_cli(LIF2, "--algorithm", "es-d-rtrl", "-o", str(tmp_path / "m.vmfb"), "--no-cache")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_fuse_steps_default_and_flags():
    """Forward-only artifacts let IREE fuse across unrolled steps; --no-fuse-steps puts a
    fusion barrier between them (the learning rules' default unless their updates are
    64 or more steps apart): IREE's compute barrier on
    each carried value, which leaves no wait in IREE's host program (no
    optimization_barrier)."""
    fused = run_cli(LIF2, "--emit", "iree-input")
    apart = run_cli(LIF2, "--emit", "iree-input", "--no-fuse-steps")
    assert fused.returncode == 0 and apart.returncode == 0, fused.stderr + apart.stderr
    assert "barrier" not in fused.stdout
    assert "optimization_barrier" not in apart.stdout
    # 8 unrolled steps, 7 boundaries, each over lif2's 5 carried state values
    assert apart.stdout.count('"iree_tensor_ext.compute_barrier.start"') == 7 * 5


def test_every_option_says_what_it_does_and_its_default():
    """`tracec --help`, `tracec-opt --help` and `tracec inspect --help` document every
    option; an option with a default other than off says it."""
    import argparse

    from tracec.cli import _compile_parser, _opt_parser

    inspect_help = run_cli("inspect", "--help")
    assert inspect_help.returncode == 0
    for parser in (_compile_parser(), _opt_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or not action.option_strings:
                continue
            assert action.help, f"{parser.prog} {action.option_strings[0]} has no help"
            if action.default not in (None, False, [], "") and "default" not in action.help:
                raise AssertionError(f"{parser.prog} {action.option_strings[0]} does not say "
                                     f"its default {action.default!r}")
    for option in ("--seed", "--json", "--graph", "--model"):
        assert option in inspect_help.stdout
    top = run_cli("--help").stdout
    assert "tracec inspect" in top and "--version" in top
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("tracec ")
    assert "jax" in version.stdout and "xdsl" in version.stdout and "iree" in version.stdout
