"""Command lines: ``tracec`` (compile a model) and ``tracec-opt`` (run passes on a .mlir file).

Flags follow iree-compile / mlir-opt conventions. Errors are one line
(``model.py:12:8: error: ...``) and a non-zero exit; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from tracec.diagnostics import TracecError

EXIT_INTERNAL = 70


def _run(main_fn, argv) -> int:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        return main_fn(argv) or 0
    except TracecError as e:
        if debug:
            traceback.print_exc()
        print(e.format(), file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # `tracec inspect ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("tracec: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug in tracec, not the user's fault
        if debug:
            traceback.print_exc()
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"tracec: internal error: {type(e).__name__}: {first} "
              "(rerun with --debug for the traceback and please report it)", file=sys.stderr)
        return EXIT_INTERNAL


class _Printer:
    """The one IR callback behind --print-ir-after, --print-ir-after-all and --dump-dir."""

    def __init__(self, after: list[str], after_all: bool, dump_dir: str | None):
        self.after = set(after)
        self.after_all = after_all
        self.dump_dir = dump_dir
        self.index = 0
        if dump_dir:
            try:
                os.makedirs(dump_dir, exist_ok=True)
            except OSError as e:
                raise TracecError(f"--dump-dir: cannot create {dump_dir}: "
                                  f"{e.strerror or type(e).__name__}",
                                  hint="give a folder you can write to") from e
            if not os.access(dump_dir, os.W_OK | os.X_OK):
                raise TracecError(f"--dump-dir: cannot write to {dump_dir}: permission denied",
                                  hint="give a folder you can write to")

    def __call__(self, stage: str, pass_name: str | None, ir: str) -> None:
        label = pass_name or f"stage-{stage}"
        if pass_name and (self.after_all or pass_name in self.after):
            sys.stderr.write(f"// -----// IR Dump After {pass_name} ({stage}) //----- //\n{ir}\n")
        if self.dump_dir and (pass_name or stage == "import"):
            from tracec.fileio import atomic_write

            name = f"{self.index:02d}-{label if pass_name else 'import'}.mlir"
            atomic_write(os.path.join(self.dump_dir, name), ir)
            self.index += 1

    @property
    def active(self) -> bool:
        return bool(self.after or self.after_all or self.dump_dir)


def _list_passes() -> int:
    from tracec.passes import PASSES, pass_summary

    for name in PASSES:
        print(f"  {name:28s} {pass_summary(name)}")
    return 0


class _Version(argparse.Action):
    """``--version``: one unwrapped line, then exit."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_line())
        parser.exit()


def version_line() -> str:
    """``tracec 0.1.0 (jax 0.10.2, jaxlib 0.10.2, xdsl 0.75.0, iree-base-compiler 3.13.0)``."""
    from tracec.versions import tool_versions

    v = tool_versions()
    rest = ", ".join(f"{k} {val}" for k, val in v.items() if k != "tracec")
    return f"tracec {v['tracec']} ({rest})"


def _compile_parser() -> argparse.ArgumentParser:
    from tracec.options import (ALGORITHMS, EVENT_MODES, OPTIMIZERS, QUIET_ITERATIONS, STAGES,
                                TARGETS, CompileOptions)

    p = argparse.ArgumentParser(
        prog="tracec",
        description="Compile one time step of a recurrent/spiking network (model.py, .mlir) "
                    "into a binary that runs (and learns) without Python.",
        epilog="other commands: 'tracec inspect MODEL' shows the hidden groups, relations and "
               "cuts the compiler finds (tracec inspect --help); 'tracec plan M.vmfb -o DIR' "
               "writes a sh driver that runs and trains M with iree-run-module, no Python "
               "(tracec plan --help); 'tracec export-nir graph.nir --checkpoint C.npz -o "
               "out.nir' writes a model as a NIR graph with trained parameters (tracec "
               "export-nir --help); 'tracec-opt FILE.mlir -p "
               "PIPELINE' runs passes on a .mlir file.")
    p.add_argument("--version", action=_Version, nargs=0,
                   help="print the versions of tracec, jax, xdsl and IREE and exit")
    p.add_argument("input", nargs="?",
                   help="model.py, a StableHLO .mlir/.mlirbc file, or a NIR graph .nir")
    p.add_argument("-o", "--output", help="output file (default: stdout for IR stages)")
    p.add_argument("--model", help="name of the tracec.Model in model.py, if it has several")
    d = CompileOptions()  # every default lives there
    p.add_argument("--algorithm", choices=ALGORITHMS, default=d.algorithm,
                   help="forward only, or an online learning rule: d-rtrl (exact "
                        "per-parameter traces) or es-d-rtrl (factorised, linear memory) "
                        "(default: %(default)s)")
    p.add_argument("--decay", type=float, default=d.decay,
                   help="ES-D-RTRL trace decay α in [0, 1) (default: %(default)s)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer,
                   help="optimizer applied to the summed gradient (default: %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate (default: %(default)s)")
    p.add_argument("--update-every", type=int, default=d.update_every, metavar="K",
                   help="apply the optimizer after every K-th step since reset; 1 is fully "
                        "online (default: %(default)s)")
    p.add_argument("--skip-masked-steps", action="store_true",
                   help="also compile advance_step and advance_sequence, the training steps "
                        "without the gradient; the runtime runs the steps whose mask is 0 "
                        "through them "
                        "(faster where the loss counts at a few steps only, e.g. the last; "
                        "a little more compile time)")
    p.add_argument("--batch-shards", type=int, default=d.batch_shards, metavar="N",
                   help="compile the step for B/N rows; the runtime trains N parts of the "
                        "batch side by side (one thread each) and applies the optimizer to "
                        "their summed gradients once per update window, the same learning "
                        "as the whole batch (default: %(default)s)")
    p.add_argument("--scan-unroll", type=int, default=None, metavar="K",
                   help="IREE: time steps per loop iteration of the *_sequence entries; "
                        "1 compiles fastest. Default: 8 for --algorithm forward and for a learning "
                        f"rule with --update-every >= {8 * QUIET_ITERATIONS}, else 4")
    p.add_argument("--fuse-steps", action=argparse.BooleanOptionalAction, default=None,
                   help="IREE: fuse kernels across the unrolled time steps (faster "
                        "sequences; for training about twice the compile time). Default: "
                        "on for --algorithm forward; for the learning rules on where the "
                        "iterations between updates run without the optimizer (--update-"
                        f"every >= {QUIET_ITERATIONS} x K) and IREE's fusion accepts it, "
                        "else off")
    p.add_argument("--event-driven", choices=EVENT_MODES, default=d.event_driven,
                   help="IREE: relations fed by spikes (z @ W) work over the nonzero "
                        "entries only, falling back to the dense product when a step has "
                        "more; auto: on llvm-cpu, where N >= 1024 and H is not narrow "
                        "(default: %(default)s)")
    p.add_argument("--event-capacity", type=float, default=d.event_capacity, metavar="F",
                   help="IREE: nonzero entries per batch row the event-driven form holds, "
                        "as a fraction of N (default: %(default)s)")
    p.add_argument("--target", choices=TARGETS, default=d.target,
                   help="backend the binary is compiled for (default: %(default)s)")
    p.add_argument("--cpu", default=d.cpu,
                   help="llvm-cpu: CPU name (host, generic, znver4, ...) (default: %(default)s)")
    p.add_argument("--target-triple", default=d.target_triple,
                   help="llvm-cpu cross compilation, e.g. aarch64-linux-gnu (default: the host)")
    p.add_argument("--cuda-arch", default=d.cuda_arch,
                   help="cuda: GPU architecture (default: %(default)s)")
    p.add_argument("--rocm-arch", default=d.rocm_arch,
                   help="rocm: GPU architecture (default: %(default)s)")
    p.add_argument("--vulkan-target", default=d.vulkan_target,
                   help="vulkan: IREE target preset; the default runs on any Vulkan device, "
                        "a GPU preset (ampere, rdna3, valhall) only on that kind "
                        "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="key given to init_params (default: %(default)s)")
    from tracec.frontends.nir_input import DEFAULT_BATCH, DEFAULT_DT, DEFAULT_LOSS, LOSSES

    p.add_argument("--dt", type=float, default=DEFAULT_DT, metavar="SECONDS",
                   help="NIR input: the forward-Euler time step of one step (docs/nir.md) "
                        "(default: %(default)s)")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                   help="NIR input: the batch size the step is compiled for "
                        "(default: %(default)s)")
    p.add_argument("--loss", choices=LOSSES, default=DEFAULT_LOSS,
                   help="NIR input: the per-step loss of the Output node's value: mse "
                        "(target shaped like the output) or cross-entropy (output [batch, "
                        "classes], int32 class target) (default: %(default)s)")
    p.add_argument("--loss-file", metavar="LOSS.py",
                   help="NIR input: a Python file defining loss(output, target) (and "
                        "optionally target = jax.ShapeDtypeStruct(...)); replaces --loss")
    p.add_argument("--emit", choices=STAGES, help="stop after this stage and write its output")
    p.add_argument("--print-ir-after", action="append", default=[], metavar="PASS",
                   help="print the IR after this pass to stderr (repeatable)")
    p.add_argument("--print-ir-after-all", action="store_true",
                   help="print the IR after every pass to stderr")
    p.add_argument("--dump-dir", metavar="DIR", help="write the IR after every pass, one numbered file each")
    p.add_argument("-p", "--pipeline", metavar="PIPELINE",
                   help="run these passes instead of the default pipeline (xdsl-opt syntax)")
    p.add_argument("--list-passes", action="store_true", help="list the passes and exit")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the compile cache")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _compile_main(argv) -> int:
    args = _compile_parser().parse_args(argv)
    if args.list_passes:
        return _list_passes()
    if not args.input:
        raise TracecError("no input file", hint="usage: tracec model.py -o model.vmfb")
    from tracec.driver import compile as tracec_compile
    from tracec.fileio import atomic_write, refuse_overwriting_inputs
    from tracec.options import CompileOptions

    binary = args.emit in (None, "vmfb", "xla")
    if args.output == "-" and binary:
        raise TracecError("-o -: a binary artifact is not written to stdout",
                          hint="give a file name, e.g. -o model.vmfb (IR stages given with "
                               "--emit can go to stdout)")
    if args.output and args.output != "-":
        refuse_overwriting_inputs(args.output, [args.input])
        if os.path.isdir(args.output):
            raise TracecError(f"-o {args.output} is a directory",
                              hint="give a file name, e.g. -o model.vmfb")

    if args.print_ir_after:
        from tracec.passes import PASSES

        unknown = [n for n in args.print_ir_after if n not in PASSES]
        if unknown:
            raise TracecError(f"--print-ir-after: unknown pass '{unknown[0]}'",
                              hint="tracec --list-passes shows the available passes")
    options = CompileOptions(
        algorithm=args.algorithm, decay=args.decay, optimizer=args.optimizer, lr=args.lr,
        update_every=args.update_every, skip_masked_steps=args.skip_masked_steps,
        batch_shards=args.batch_shards, scan_unroll=args.scan_unroll,
        fuse_steps=args.fuse_steps, event_driven=args.event_driven,
        event_capacity=args.event_capacity, target=args.target,
        seed=args.seed, cpu=args.cpu,
        target_triple=args.target_triple, cuda_arch=args.cuda_arch, rocm_arch=args.rocm_arch,
        vulkan_target=args.vulkan_target)
    nir_options = None
    from tracec.frontends.nir_input import NirOptions

    if not args.input.endswith(".nir"):
        given = [flag for flag, value, default in (
            ("--dt", args.dt, NirOptions.dt), ("--batch", args.batch, NirOptions.batch),
            ("--loss", args.loss, NirOptions.loss), ("--loss-file", args.loss_file, None))
            if value != default]
        if given:
            raise TracecError(f"{given[0]} applies to NIR graphs (.nir) only",
                              hint="a model.py or .mlir file sets its batch and loss itself")
    else:
        nir_options = NirOptions(dt=args.dt, batch=args.batch, loss=args.loss,
                                 loss_file=args.loss_file)
    printer = _Printer(args.print_ir_after, args.print_ir_after_all, args.dump_dir)
    art = tracec_compile(args.input, options, emit=args.emit, pipeline=args.pipeline,
                         callback=printer if printer.active else None, model_name=args.model,
                         use_cache=not args.no_cache, nir_options=nir_options)
    if args.output and args.output != "-":
        # Also the helper modules the model imported from its own folder.
        refuse_overwriting_inputs(args.output, _model_folder_modules(args.input))
    for w in art.warnings:
        print(w, file=sys.stderr)
    if art.binary is None:
        text = art.ir[args.emit]
        if args.output and args.output != "-":
            atomic_write(args.output, text)
        else:
            sys.stdout.write(text)
        return 0
    if not args.output:
        raise TracecError("no output file for the binary", hint="add -o model.vmfb")
    art.save(args.output)
    return 0


def _model_folder_modules(model_path: str) -> list[str]:
    """The Python files in the model's folder that this process has imported."""
    folder = os.path.dirname(os.path.realpath(model_path))
    found = []
    for module in list(sys.modules.values()):
        f = getattr(module, "__file__", None)
        if isinstance(f, str) and f.endswith(".py") \
                and os.path.dirname(os.path.realpath(f)) == folder:
            found.append(f)
    return found


def _opt_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tracec-opt",
                                description="Run tracec passes on a .mlir file (like xdsl-opt).")
    p.add_argument("--version", action=_Version, nargs=0,
                   help="print the versions of tracec, jax, xdsl and IREE and exit")
    p.add_argument("input", nargs="?", default="-", help=".mlir file (default: stdin)")
    p.add_argument("-p", "--passes", default="", help="pass pipeline, e.g. 'strip-sharding,inline-private-functions'")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.add_argument("--print-ir-after-all", action="store_true",
                   help="print the IR after every pass to stderr")
    p.add_argument("--list-passes", action="store_true", help="list the passes and exit")
    p.add_argument("--no-locations", action="store_true", help="print without loc(...)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _opt_main(argv) -> int:
    args = _opt_parser().parse_args(argv)
    if args.list_passes:
        return _list_passes()
    from tracec.driver import parse_pipeline, run_passes
    from tracec.fileio import atomic_write
    from tracec.frontends.stablehlo_io import (import_text, mlir_to_generic_text, print_generic,
                                               read_mlir_file)

    passes = parse_pipeline(args.passes) if args.passes else []
    if args.input == "-":
        name = "<stdin>"
        generic = mlir_to_generic_text(sys.stdin.read(), name)
    else:
        generic = read_mlir_file(args.input)
        name = args.input
    module = import_text(generic, source_file=None, source_name=name)
    try:  # like mlir-opt: the input must verify before any pass runs
        module.verify()
    except Exception as e:
        raise TracecError(f"{name} does not verify: {str(e).strip().splitlines()[0]}",
                          hint="fix the op named above; tracec-opt checks its input first") from e
    printer = _Printer([], args.print_ir_after_all, None)
    run_passes(module, passes, "tracec-opt", printer if printer.active else None)
    out = print_generic(module, debuginfo=not args.no_locations)
    if args.output == "-":
        sys.stdout.write(out)
    else:
        atomic_write(args.output, out)
    return 0


def _main(argv) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "inspect":
        from tracec.inspect import main as inspect_main

        return inspect_main(argv[1:])
    if argv and argv[0] == "plan":
        from tracec.plan import main as plan_main

        return plan_main(argv[1:])
    if argv and argv[0] == "export-nir":
        from tracec.nir_export import main as export_nir_main

        return export_nir_main(argv[1:])
    return _compile_main(argv)


def _compiler_installed(prog: str) -> bool:
    """The compiler's packages are an extra (``pip install 'tracec[compiler]'``); without
    them say so in one line instead of failing on an import deep inside."""
    import importlib.util

    missing = [m for m in ("jax", "xdsl", "iree.compiler")
               if importlib.util.find_spec(m.split(".")[0]) is None
               or (m == "iree.compiler" and importlib.util.find_spec(m) is None)]
    if missing:
        print(f"{prog}: error: the compiler is not installed (missing {', '.join(missing)}); "
              "this install has the runtime only (tracec.runtime); install the compiler with "
              "pip install 'tracec[compiler]'", file=sys.stderr)
        return False
    return True


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] != ["--version"] and not _compiler_installed("tracec"):
        sys.exit(1)
    sys.exit(_run(_main, argv))


def opt_main(argv=None) -> int:
    if not _compiler_installed("tracec-opt"):
        sys.exit(1)
    sys.exit(_run(_opt_main, argv))


if __name__ == "__main__":
    main()
