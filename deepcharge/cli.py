"""The ``deepcharge`` command line: argument parsing only; each command lives in ``entrypoints/``."""

import argparse
import logging
import os
import sys
from typing import List, Optional

from deepcharge import __version__
from deepcharge.choices import DENSITY_BLOCKS
from deepcharge.errors import DeepChargeError
from deepcharge.reading import XSF_UNITS, read_options


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's formatter that appends ``(default: X)`` to an option's help, except where there is no default
    to show (None, a flag's False)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def read_file_options() -> argparse.ArgumentParser:
    """The options that say what density files cannot: a VASP 4 file's species, an XSF file's unit."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("density files")
    group.add_argument("--species", nargs="+", metavar="SYMBOL",
                       help="elements of a VASP 4 CHGCAR's species (its header has no species line), in the order "
                            "of its counts line, e.g. --species Ga As")
    group.add_argument("--xsf-unit", choices=list(XSF_UNITS), default="e/A3",
                       help="unit of XSF datagrid values, which XSF leaves open (`info` shows the electrons it gives)")
    return options


def device_option() -> argparse.ArgumentParser:
    """``--device``, for the commands that run a frozen model."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--device", default="auto", help="auto, cpu or cuda")
    return options


def model_option() -> argparse.ArgumentParser:
    """``-m/--model``: one frozen model (``--models``, model-devi's spelling, works too)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("-m", "--model", default="frozen_model.pth", help="frozen model")
    options.add_argument("--models", dest="model", help=argparse.SUPPRESS)
    return options


def grid_options() -> argparse.ArgumentParser:
    """``--grid`` or ``--spacing``: the grid a density is predicted on (else the structure file's own)."""
    options = argparse.ArgumentParser(add_help=False)
    where = options.add_mutually_exclusive_group()
    where.add_argument("--grid", nargs=3, type=int, metavar=("NX", "NY", "NZ"), help="grid points per axis")
    where.add_argument("--spacing", type=float, metavar="H",
                       help="largest grid spacing in Å: each axis takes the smallest size made of factors 2, 3 and 5 "
                            "that meets it")
    return options


# thread settings the command line chooses where the environment leaves them unset, before torch (and its OpenMP)
# is imported, as DeePMD-kit's set_env_if_empty does: idle OpenMP threads sleep instead of spinning, which on a
# small or shared machine leaves the cores to the threads with work (predict on Si64, 2 cores: see README)
THREAD_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}
LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def set_thread_defaults(environ=os.environ):
    """Put :data:`THREAD_DEFAULTS` into ``environ`` where it has no value of its own."""
    for name, value in THREAD_DEFAULTS.items():
        environ.setdefault(name, value)


def _log_options(default) -> argparse.ArgumentParser:
    """``-v/--log-level`` and ``-l/--log-path``, as dp has them; on the subcommands their default is left out, so
    an option given before the subcommand name is kept."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("-v", "--log-level", type=str.upper, choices=LOG_LEVELS,
                         default="INFO" if default else argparse.SUPPRESS,
                         help="logging verbosity" if default else "logging verbosity (default: INFO)")
    options.add_argument("-l", "--log-path", metavar="FILE", default=None if default else argparse.SUPPRESS,
                         help="also write the log to FILE (as dp -l); by default it goes to the terminal only")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepcharge", parents=[_log_options(default=True)], formatter_class=HelpFormatter,
        description="Learn DFT electron densities on grids and predict them for new structures.",
        epilog="Threads: deepcharge sets OMP_WAIT_POLICY=PASSIVE unless the environment sets it; OMP_NUM_THREADS "
               "chooses the number of threads (default: one per core).")
    parser.add_argument("--version", action="version", version=f"deepcharge {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    log_options, reads, device, model, grid = (_log_options(default=False), read_file_options(), device_option(),
                                               model_option(), grid_options())

    def command(name, help, parents=()):
        return commands.add_parser(name, help=help, parents=[log_options, *parents], formatter_class=HelpFormatter)

    train = command("train", "train a model from an input file (JSON or YAML)", [reads])
    train.add_argument("INPUT", help="input file (JSON or YAML) with sections model, learning_rate, loss, training")
    group = train.add_mutually_exclusive_group()
    group.add_argument("-r", "--restart", metavar="CKPT", help="continue a run from its checkpoint")
    group.add_argument("-i", "--init-model", metavar="CKPT",
                       help="start from a checkpoint's weights; an ensemble's run directory starts each member "
                            "from its own member_<i>/")
    train.add_argument("-o", "--output", default="out.json", help="normalised input written here")

    freeze = command("freeze", "checkpoint → self-contained TorchScript model file")
    freeze.add_argument("-c", "--checkpoint", default=".",
                        help="checkpoint file, or the directory training ran in; an ensemble's directory freezes "
                             "every member_<i>/ to OUTPUT_<i> (frozen_model_<i>.pth)")
    freeze.add_argument("-o", "--output", default="frozen_model.pth", help="frozen model file")

    compress = command("compress", "frozen pseudo_atom model → faster model with tabulated embedding nets "
                                   "(as dp compress)")
    compress.add_argument("-i", "--input", default="frozen_model.pth", help="frozen model")
    compress.add_argument("-o", "--output", default="frozen_model_compressed.pth", help="compressed model")
    compress.add_argument("-s", "--step", type=float, default=0.01,
                          help="stride of the table in the normalised s; 10× that in the extrapolated part")
    compress.add_argument("-e", "--extrapolate", type=float, default=5.0,
                          help="the table reaches this multiple of the largest normalised s a probe can have")
    compress.add_argument("--min-distance", type=float, metavar="R",
                          help="closest probe–atom distance (Å) the table covers; default 0 (a probe on an atom), "
                               "which needs env_protection > 0")

    test = command("test", "errors of a frozen model on density files", [model, device, reads])
    test.add_argument("-s", "--system", nargs="+", required=True, metavar="SYSTEM",
                      help="density files, globs, directories, stores or STORE::NAME")
    test.add_argument("-n", "--numb-points", type=int, default=0, help="random grid points per file; 0 takes all")
    test.add_argument("-d", "--detail-file", metavar="PREFIX", help="write per-point detail to PREFIX.<file>.out")
    test.add_argument("--json", metavar="OUT", help="write the metrics as JSON")
    test.add_argument("--seed", type=int, default=0, help="seed of the -n point sample")
    test.add_argument("--conserve-electrons", action="store_true",
                      help="rescale each prediction to the electrons its structure should hold (training data's "
                           "electrons per atom of each species); the raw integral is reported too")

    predict = command("predict", "predict a density file for a structure", [model, grid, device, reads])
    predict.add_argument("-s", "--structure", required=True,
                         help="density file or STORE::NAME (its structure and grid), any structure file ASE reads "
                              "(every frame), or a DeePMD system directory")
    predict.add_argument("-f", "--format", dest="fmt", metavar="FMT",
                         help="structure format: an ASE name (extxyz, vasp, lammps-data, ...) or a dpdata one "
                              "(lammps/dump, lammps/lmp, deepmd/npy, ...; LAMMPS types map to the model's type_map)")
    predict.add_argument("-o", "--output", required=True,
                         help="OUT.CHGCAR (VASP layout), OUT.cube or OUT.xsf, each also .gz, or "
                              "DIR/PREFIX.save/charge-density.dat (Quantum ESPRESSO); several frames give "
                              "OUT_<frame>.CHGCAR, ...")
    conserve = predict.add_mutually_exclusive_group()
    conserve.add_argument("--electrons", type=float, metavar="N",
                          help="rescale the predicted density to integrate to N electrons")
    conserve.add_argument("--conserve-electrons", action="store_true",
                          help="rescale to the electrons the structure should hold, from the training data's "
                               "electrons per atom of each species (stored in the frozen model)")
    predict.add_argument("--augmentation-from", metavar="CHGCAR",
                         help="write the PAW augmentation occupancies of this VASP CHGCAR of the same atoms after the "
                              "predicted grid (and its magnetisation, for a spin-polarised one), for ICHARG = 1")
    predict.add_argument("--ecutrho", type=float, metavar="RY",
                         help="cut-off (Ry) of a QE PREFIX.save/charge-density.dat output, for startingpot='file' "
                              "(default: the ecutrho of the data-file-schema.xml beside it); predicted on QE's FFT "
                              "grid unless --grid or --spacing")

    devi = command("model-devi", "an ensemble's mean density and deviation on grids, as dp model-devi",
                   [grid, device, reads])
    devi.add_argument("-m", "--models", nargs="+", required=True, metavar="MODEL",
                      help="frozen models of one ensemble (the same type_map), e.g. frozen_model_*.pth (test's "
                           "spelling --model works too)")
    devi.add_argument("-s", "--structures", nargs="+", required=True, metavar="STRUCTURE",
                      help="structures as predict takes them (density files, STORE::NAME, ASE or dpdata files)")
    devi.add_argument("-f", "--format", dest="fmt", metavar="FMT", help="structure format, as predict's -f")
    devi.add_argument("-o", "--output", required=True,
                      help="OUT.CHGCAR, OUT.cube or OUT.xsf: writes OUT_mean.CHGCAR, OUT_devi.CHGCAR (σ per point) "
                           "and the table OUT_model_devi.out; several structures give OUT_mean_<i>.CHGCAR, ...")

    compare = command("compare", "several models on the same grid points: tables and figures", [device, reads])
    source = compare.add_mutually_exclusive_group(required=True)
    source.add_argument("-m", "--model", nargs="+", metavar="MODEL", help="frozen models")
    source.add_argument("--models", dest="model", nargs="+", help=argparse.SUPPRESS)  # model-devi's spelling
    source.add_argument("-i", "--input", nargs="+", metavar="INPUT",
                        help="input files: each is trained and frozen in OUTPUT/train_<name>/ first (a rerun takes "
                             "the models it finds there and continues interrupted trainings)")
    source.add_argument("-r", "--results", nargs="+", metavar="DIR",
                        help="directories earlier comparisons wrote (-o): accuracy_speed.png and studies.md of "
                             "them all, one colour per study (no -s)")
    compare.add_argument("-s", "--system", nargs="+", metavar="SYSTEM",
                         help="density files, globs, directories, stores or STORE::NAME (as test -s)")
    compare.add_argument("-o", "--output", default="compare", help="output directory")
    compare.add_argument("-n", "--numb-points", type=int, default=0,
                         help="random grid points per file, the same for every model; 0 takes all")
    compare.add_argument("--seed", type=int,
                         help="seed of the -n point sample (default 0); with -i also every input's training.seed")
    compare.add_argument("--slice-file", metavar="FILE", help="density file shown in slice.png (the first of -s)")
    compare.add_argument("--plane", choices=["xy", "xz", "yz"], default="xy", help="plane of slice.png")
    compare.add_argument("--position", type=float, default=0.0,
                         help="fractional position of the plane along the third axis; the nearest grid plane")
    compare.add_argument("--budget", type=float, metavar="MINUTES",
                         help="with -i: the training time of every input (training.time_budget; evaluations "
                              "excluded), the same for all")
    compare.add_argument("-c", "--checkpoint-dir", nargs="+", metavar="DIR",
                         help="with -m: the directory each model was trained in, for lcurve.png")

    info = command("info", "what density files hold", [reads])
    info.add_argument("FILES", nargs="+", help="density or structure files, globs, directories, stores or STORE::NAME")
    info.add_argument("--json", metavar="OUT", help="write the summary as JSON")
    info.add_argument("--block", choices=DENSITY_BLOCKS, metavar="NAME",
                      help=f"the density block to show and integrate ({', '.join(DENSITY_BLOCKS)}); by default a "
                           "file's total, a store entry's own")

    convert = command("convert", "density files → one dataset store (HDF5)", [reads])
    convert.add_argument("FILES", nargs="+", help="density files, globs or directories (every density file inside)")
    convert.add_argument("-o", "--output", required=True, metavar="STORE", help="the store, e.g. data.h5")
    convert.add_argument("--append", action="store_true", help="add to the store (files already in it are skipped)")
    convert.add_argument("--density-block", choices=DENSITY_BLOCKS, default="total",
                         help="which block of spin-polarised (magnetization) or non-collinear (magnetization_x, _y, "
                              "_z) files to store")

    stat = command("neighbor-stat", "largest neighbour counts per type, to set sel", [reads])
    stat.add_argument("-s", "--system", nargs="+", required=True, metavar="SYSTEM",
                      help="density files, globs, directories, stores or STORE::NAME")
    stat.add_argument("-r", "--rcut", type=float, required=True, help="cut-off radius in Å")
    stat.add_argument("-t", "--type-map", nargs="+", required=True, help="element symbols, e.g. O H")
    stat.add_argument("-n", "--numb-points", type=int, default=-1, help="random grid points per file; -1 takes all")

    loop = command("loop", "concurrent learning as DP-GEN's run: train an ensemble, explore structures, label the "
                           "ones its σ picks with DFT, repeat (a rerun continues a stopped loop)", [device])
    loop.add_argument("INPUT", help="loop input (JSON or YAML): train, init_data, explore, select, label, iterations "
                                    "(`deepcharge doc-loop-input` lists every key); runs in the current directory")

    plot = command("plot", "learning curves (lcurve.out) or parity plots (test -d files) as PNG")
    plot.add_argument("FILES", nargs="+", help="lcurve.out files, or detail files written by `test -d`")
    plot.add_argument("-o", "--output", default="plot.png", help="image file")

    doc = command("doc-train-input", "every input key with its type, default and meaning")
    doc.add_argument("--out-type", choices=["rst", "json", "json_schema"], default="rst",
                     help="rst (text), json (the keys as dargs encodes them) or json_schema, as dp doc-train-input")
    doc_loop = command("doc-loop-input", "every key of the loop input with its type, default and meaning")
    doc_loop.add_argument("--out-type", choices=["rst", "json", "json_schema"], default="rst",
                          help="rst (text), json (the keys as dargs encodes them) or json_schema")
    return parser


# the commands, each importing its module when it runs so that ``--help`` stays fast
def _train(args):
    from deepcharge.entrypoints.train import run_train
    run_train(args.INPUT, restart=args.restart, init_model=args.init_model, output=args.output)


def _freeze(args):
    from deepcharge.entrypoints.freeze import freeze_run
    freeze_run(args.checkpoint, args.output)


def _compress(args):
    from deepcharge.entrypoints.compress import compress_model
    compress_model(args.input, args.output, args.step, args.extrapolate, args.min_distance)


def _test(args):
    from deepcharge.entrypoints.test import run_test
    run_test(args.model, args.system, args.numb_points, args.detail_file, args.json, args.device, args.seed,
             args.conserve_electrons)


def _predict(args):
    from deepcharge.entrypoints.predict import run_predict
    run_predict(args.model, args.structure, args.output, args.grid, args.spacing, args.device, args.fmt,
                args.electrons, args.conserve_electrons, args.augmentation_from, args.ecutrho)


def _model_devi(args):
    from deepcharge.entrypoints.model_devi import run_model_devi
    run_model_devi(args.models, args.structures, args.output, args.grid, args.spacing, args.device, args.fmt)


def _compare(args):
    from deepcharge.entrypoints.compare import compare_studies, run_compare, train_and_compare
    options = {"numb_points": args.numb_points, "slice_file": args.slice_file, "plane": args.plane,
               "position": args.position, "device": args.device}
    if args.budget is not None and args.input is None:
        raise DeepChargeError("--budget goes with -i (it sets the training time of every input)")
    if args.results is not None:
        if args.system:
            raise DeepChargeError("-r/--results draws earlier comparisons; it takes no -s")
        compare_studies(args.results, args.output)
    elif not args.system:
        raise DeepChargeError("-s/--system: give the density files to compare on")
    elif args.input is None:
        run_compare(args.model, args.system, args.output, seed=args.seed or 0, checkpoint_dirs=args.checkpoint_dir,
                    **options)
    elif args.checkpoint_dir:
        raise DeepChargeError("-c/--checkpoint-dir goes with -m; with -i the training directories are used")
    else:
        train_and_compare(args.input, args.system, args.output, args.seed, args.budget, **options)


def _info(args):
    from deepcharge.entrypoints.info import run_info
    run_info(args.FILES, args.json, args.block)


def _convert(args):
    from deepcharge.entrypoints.convert import run_convert
    run_convert(args.FILES, args.output, args.append, args.density_block)


def _neighbor_stat(args):
    from deepcharge.entrypoints.neighbor_stat import run_neighbor_stat
    run_neighbor_stat(args.system, args.rcut, args.type_map, args.numb_points)


def _loop(args):
    from deepcharge.loop.run import run_loop
    run_loop(args.INPUT, args.device)


def _plot(args):
    from deepcharge.analysis.plots import plot_files
    plot_files(args.FILES, args.output)


def _doc_train_input(args):
    from deepcharge.config import doc_train_input
    print(doc_train_input(args.out_type))


def _doc_loop_input(args):
    from deepcharge.loop.config import doc_loop_input
    print(doc_loop_input(args.out_type))


COMMANDS = {"train": _train, "freeze": _freeze, "compress": _compress, "test": _test, "predict": _predict,
            "model-devi": _model_devi, "compare": _compare, "info": _info, "convert": _convert,
            "neighbor-stat": _neighbor_stat, "loop": _loop, "plot": _plot, "doc-train-input": _doc_train_input,
            "doc-loop-input": _doc_loop_input}


def dispatch(args: argparse.Namespace):
    """Run the command ``args`` names."""
    COMMANDS[args.command](args)


def _log_to_file(path: Optional[str], level: str) -> Optional[logging.Handler]:
    """With ``-l FILE``: a handler writing the deepcharge log to FILE (replaced, as dp -l does)."""
    if path is None:
        return None
    try:
        handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    except OSError as err:
        raise DeepChargeError(f"-l/--log-path {path}: cannot write ({err.strerror or err})") from None
    handler.setLevel(getattr(logging, level))
    handler.setFormatter(logging.Formatter("%(asctime)s deepcharge %(levelname)s %(message)s"))
    return handler


def main(argv: Optional[List[str]] = None) -> int:
    set_thread_defaults()
    args = build_parser().parse_args(argv)
    level = getattr(logging, args.log_level)
    # other libraries' debug chatter stays out of -v DEBUG
    logging.basicConfig(level=max(level, logging.INFO), format="deepcharge %(levelname)s %(message)s",
                        stream=sys.stderr)
    log = logging.getLogger("deepcharge")
    log.setLevel(level)
    handler = None
    try:
        handler = _log_to_file(args.log_path, args.log_level)
        if handler:
            log.addHandler(handler)
        with read_options(getattr(args, "species", None), getattr(args, "xsf_unit", None)):
            dispatch(args)
    except DeepChargeError as err:
        print(f"deepcharge {args.command}: error: {err}", file=sys.stderr)
        if handler:
            handler.handle(log.makeRecord(log.name, logging.ERROR, __file__, 0, f"{args.command}: {err}", None, None))
        return 1
    except KeyboardInterrupt:
        print(f"deepcharge {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if handler:
            log.removeHandler(handler)
            handler.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
