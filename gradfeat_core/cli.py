"""python -m gradfeat_core SUBCOMMAND ...  (see --help of each subcommand)."""
import argparse
import sys

from .checkpoint import CheckpointError
from .data import DataError
from .linear_model import HEADS
from .params import ParamError, load_params

USER_ERRORS = (ParamError, DataError, CheckpointError)


def train_head(args):
    from .run import run_head  # imported here so that --help stays fast
    sets = list(args.set)
    if args.head:
        sets.append(f"model.head={args.head}")
    if args.layers:
        sets.append(f"model.layers={args.layers}")
    result = run_head(load_params(args.profile, sets))
    print(f"test accuracy {result['accuracy']:.4f}  ({result['head']} {result['layers']}, "
          f"{result['iterations']} iterations, {result['seconds']:.0f} s) -> {result['path']}")


def parser():
    p = argparse.ArgumentParser(prog="python -m gradfeat_core", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train-head", help="train one head and write its result JSON")
    t.add_argument("--profile", default="fashion-mnist", help="params/profiles/NAME.yaml")
    t.add_argument("--head", choices=HEADS, help="overrides model.head")
    t.add_argument("--layers", help="θ2 blocks: conv5 | conv4-5 | conv3-5 (overrides model.layers)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one parameter, e.g. --set train.actv.lr=0.05 (repeatable)")
    t.set_defaults(func=train_head)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
