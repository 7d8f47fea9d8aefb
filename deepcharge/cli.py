"""The ``deepcharge`` command line: argument parsing only; each command lives in ``entrypoints/``."""

import argparse
import logging
import sys
from typing import List, Optional

from . import __version__
from .errors import DeepChargeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepcharge",
        description="Learn DFT electron densities on grids and predict them for new structures.")
    parser.add_argument("--version", action="version", version=f"deepcharge {__version__}")
    parser.add_argument("-v", "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="logging verbosity (default INFO)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser("train", help="train a model from an input file (JSON or YAML)")
    train.add_argument("INPUT", help="input file (JSON or YAML) with sections model, learning_rate, loss, training")
    group = train.add_mutually_exclusive_group()
    group.add_argument("-r", "--restart", metavar="CKPT", help="continue a run from its checkpoint")
    group.add_argument("-i", "--init-model", metavar="CKPT", help="start from a checkpoint's weights")
    train.add_argument("-o", "--output", default="out.json", help="normalised input written here (out.json)")

    freeze = commands.add_parser("freeze", help="checkpoint → self-contained TorchScript model file")
    freeze.add_argument("-c", "--checkpoint", default=".",
                        help="checkpoint file, or the directory training ran in (default .)")
    freeze.add_argument("-o", "--output", default="frozen_model.pth", help="frozen model file (frozen_model.pth)")

    test = commands.add_parser("test", help="errors of a frozen model on density files")
    test.add_argument("-m", "--model", default="frozen_model.pth", help="frozen model (frozen_model.pth)")
    test.add_argument("-s", "--system", nargs="+", required=True, metavar="FILE", help="density files")
    test.add_argument("-n", "--numb-points", type=int, default=0,
                      help="random grid points per file; 0 (default) takes all")
    test.add_argument("-d", "--detail-file", metavar="PREFIX", help="write per-point detail to PREFIX.<file>.out")
    test.add_argument("--json", metavar="OUT", help="write the metrics as JSON")
    test.add_argument("--seed", type=int, default=0, help="seed of the -n point sample")
    test.add_argument("--device", default="auto", help="auto, cpu or cuda")

    predict = commands.add_parser("predict", help="predict a density file for a structure")
    predict.add_argument("-m", "--model", default="frozen_model.pth", help="frozen model (frozen_model.pth)")
    predict.add_argument("-s", "--structure", required=True,
                         help="density file (its structure and grid) or any structure file ASE reads")
    predict.add_argument("-o", "--output", required=True, help="OUT.CHGCAR (VASP layout) or OUT.cube")
    where = predict.add_mutually_exclusive_group()
    where.add_argument("--grid", nargs=3, type=int, metavar=("NX", "NY", "NZ"), help="grid points per axis")
    where.add_argument("--spacing", type=float, metavar="H", help="largest grid spacing in Å")
    predict.add_argument("--device", default="auto", help="auto, cpu or cuda")

    info = commands.add_parser("info", help="what density files hold")
    info.add_argument("FILES", nargs="+")
    info.add_argument("--json", metavar="OUT", help="write the summary as JSON")

    stat = commands.add_parser("neighbor-stat", help="largest neighbour counts per type, to set sel")
    stat.add_argument("-s", "--system", nargs="+", required=True, metavar="FILE", help="density files")
    stat.add_argument("-r", "--rcut", type=float, required=True, help="cut-off radius in Å")
    stat.add_argument("-t", "--type-map", nargs="+", required=True, help="element symbols, e.g. O H")
    stat.add_argument("-n", "--numb-points", type=int, default=-1, help="random grid points per file (all)")

    plot = commands.add_parser("plot", help="learning curves (lcurve.out) or parity plots (test -d files) as PNG")
    plot.add_argument("FILES", nargs="+", help="lcurve.out files, or detail files written by `test -d`")
    plot.add_argument("-o", "--output", default="plot.png", help="image file (plot.png)")

    commands.add_parser("doc-train-input", help="every input key with its type, default and meaning")
    return parser


def dispatch(args: argparse.Namespace):
    """Run the command ``args`` names (imports are local so ``--help`` stays fast)."""
    if args.command == "train":
        from .entrypoints.train import run_train
        run_train(args.INPUT, restart=args.restart, init_model=args.init_model, output=args.output)
    elif args.command == "freeze":
        from .entrypoints.freeze import freeze_model
        freeze_model(args.checkpoint, args.output)
    elif args.command == "test":
        from .entrypoints.test import run_test
        run_test(args.model, args.system, args.numb_points, args.detail_file, args.json, args.device, args.seed)
    elif args.command == "predict":
        from .entrypoints.predict import run_predict
        run_predict(args.model, args.structure, args.output, args.grid, args.spacing, args.device)
    elif args.command == "info":
        from .entrypoints.info import run_info
        run_info(args.FILES, args.json)
    elif args.command == "neighbor-stat":
        from .entrypoints.neighbor_stat import run_neighbor_stat
        run_neighbor_stat(args.system, args.rcut, args.type_map, args.numb_points)
    elif args.command == "plot":
        from .analysis.plots import plot_files
        plot_files(args.FILES, args.output)
    elif args.command == "doc-train-input":
        from .config import doc_train_input
        print(doc_train_input())


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level), format="deepcharge %(levelname)s %(message)s",
                        stream=sys.stderr)
    try:
        dispatch(args)
    except DeepChargeError as err:
        print(f"deepcharge {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"deepcharge {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
