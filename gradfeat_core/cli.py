"""python -m gradfeat_core SUBCOMMAND ...  (see --help of each subcommand)."""
import argparse
import json
import sys

from .experiments.errors import UserError
from .experiments.params import with_protocol
from .method.linear_model import HEADS
from .method.registry import OBJECTIVES
from .suite.cluster import EXECUTORS

# Bad parameters, data files, checkpoints (ParamError, DataError, CheckpointError): one line and
# exit 2. Anything else is a bug and keeps its traceback.
USER_ERRORS = (UserError,)


def train_head(args):
    from .experiments.run import run_head  # imported here so that --help stays fast
    from .suite.grid import head_params
    sets = list(args.set)
    if args.head:
        sets.append(f"model.head={args.head}")
    if args.layers:
        sets.append(f"model.layers={args.layers}")
    params, section = head_params(args.profile, sets, args.objective)
    protocol_note(params, section, "the report's cells")
    if not params["base"]["checkpoint"]:
        print("note: base.checkpoint is null, so a random encoder stands in for the pre-trained one; "
              f"pre-train first (`python -m gradfeat_core pretrain --profile {args.profile}`) and "
              "pass --set base.checkpoint=<its encoder.pt>", file=sys.stderr)
    result = run_head(params)
    print(f"{score_line(result)}  ({result.head} {result.layers}, {result.iterations} iterations, "
          f"{result.ms_per_step:.1f} ms per step, {result.seconds:.0f} s in all) -> {result.path}")


def score_line(result):
    """A RunResult's test score in its own metric: accuracy, or mAP in both definitions (and on
    the test views, where the run scored them)."""
    if result.metric == "accuracy":
        return f"test accuracy {result.accuracy:.4f}"
    line = f"{result.mean_ap:.4f} (VOC07 11-point {result.mean_ap_voc07:.4f})"
    if not result.views:
        return f"test mAP {line}"
    views = result.views
    return (f"test mAP: centre crop {line}, {views['test_views']} views averaged "
            f"{views['mean_ap']:.4f} ({views['mean_ap_voc07']:.4f})")


def protocol_note(params, section, what):
    """One line on stderr when reproduce.<section> changes what a command runs."""
    if params["reproduce"][section]:
        print(f"as {what}: the profile's reproduce.{section} ({json.dumps(params['reproduce'][section])}) "
              "applied; --set overrides it", file=sys.stderr)


def pretrain(args):
    from .experiments.pretrain import DivergedError, pretrain as run_pretrain
    params, section = with_protocol(args.profile, args.set, args.objective, lambda params: "pretrain")
    protocol_note(params, section, "reproduce pre-trains")
    try:
        result = run_pretrain(params)
    except DivergedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    print(f"{result['objective']} {result['status']} after {result['iterations']} iterations "
          f"({result['seconds']:.0f} s) -> {result['out_dir']}")


def quality(args):
    from .experiments.quality import quality_curve
    frame = quality_curve(args.profile, args.set, objective=args.objective)
    print(frame.to_string(index=False))


def publish(args):
    from .suite.quality import publish as publish_encoder
    sha256 = publish_encoder(args.source, args.to, encoder=not args.curves_only)
    print(f"{args.to}: its record and curves, for base.compared" if args.curves_only
          else f"base.checkpoint_sha256: {sha256}  ({args.to}/encoder.pt)")


def import_weights(args):
    from .experiments.weights import import_weights as run_import
    sha256 = run_import(args.arch, args.out, args.source, args.format, args.dataset,
                        bgr=not args.rgb)
    print(f"base.checkpoint: {args.out}  base.checkpoint_sha256: {sha256}")


def reproduce(args):
    from .suite.reproduce import ReportError, reproduce as run_reproduce
    if args.assume_tflops is not None and (not args.dry_run or args.assume_tflops <= 0):
        raise UserError(f"--assume-tflops {args.assume_tflops:g}: it estimates for a device that is "
                        "not here, so it needs --dry-run and a positive rate, e.g. --dry-run "
                        "--assume-tflops 10")
    if args.dry_run:
        from .suite.reproduce import dry_run
        dry_run(args.profile, args.set, args.objective, args.executor, tflops=args.assume_tflops)
        return 0
    try:
        frame = run_reproduce(args.profile, args.set, objective=args.objective,
                              executor=args.executor)
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; the same command continues with the rest"
              + (" (its submitted jobs were cancelled; `squeue --me` shows any left)"
                 if args.executor == "slurm" else ""), file=sys.stderr)
        return 130
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    failed = int((frame.status != "done").sum())
    print(f"{len(frame) - failed} results, {failed} failed or not run -> {frame.attrs['report']}")
    return 1 if failed else 0


def common(p):
    p.add_argument("--profile", default="fashion-mnist", help="params/profiles/NAME.yaml")
    p.add_argument("--objective", choices=sorted(OBJECTIVES),
                   help="pre-training objective: applies params/objectives/NAME.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one parameter, e.g. --set train.actv.lr=0.05 (repeatable)")
    p.add_argument("--smoke", action="store_true",
                   help="shrink the profile to a run of minutes (params/smoke.yaml: a few images "
                        "and updates, one seed), into reports/<profile>-smoke: does my setup run?")


def parser():
    p = argparse.ArgumentParser(prog="python -m gradfeat_core", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train-head", help="train one head (seed 0) as the report's cells train it, "
                                          "with its table's protocol (reproduce.heads or ablation, e.g. "
                                          "a training subset; --set overrides it), and write its result JSON")
    common(t)
    t.add_argument("--head", choices=HEADS, help="overrides model.head")
    t.add_argument("--layers", help="θ2 blocks, ending at the top block: conv5 | conv4-5 | conv3-5 on "
                                    "the five-conv encoder, block8 | block7-8 on ResNet18 (default: the "
                                    "profile's model.layers, its top block)")
    t.set_defaults(func=train_head)
    pt = sub.add_parser("pretrain", help="pre-train the profile's base network by its objective (ALI, VAE, rotation, supervised, ...)")
    common(pt)
    pt.set_defaults(func=pretrain)
    q = sub.add_parser("quality", help="the activation probe on each encoder snapshot of a "
                                       "pre-training run, and on the random encoder")
    common(q)
    q.set_defaults(func=quality)
    pub = sub.add_parser("publish-encoder", help="copy a pre-trained encoder, its record and the "
                                                 "quality curves of its reruns to a folder to commit")
    pub.add_argument("source", nargs="+", help="pre-training folders (<out_dir>/pretrain/<objective>); "
                                               "the first one's encoder is published")
    pub.add_argument("--to", required=True, help="destination folder, e.g. encoders/fashion-mnist-rotation")
    pub.add_argument("--curves-only", action="store_true",
                     help="no encoder.pt: the record and quality curve of a pre-training tried and "
                          "not used, for base.compared")
    pub.set_defaults(func=publish)
    w = sub.add_parser("import-weights", help="a published ResNet's weights as an encoder "
                                              "checkpoint (torchvision's, or Goyal et al.'s Caffe2 "
                                              "Jigsaw/supervised ResNet-50)")
    w.add_argument("source", nargs="?", help="the weights file; none with --format torchvision: "
                                             "download torchvision's ImageNet weights (needs a network)")
    w.add_argument("--arch", required=True, help="resnet18, resnet50, ...")
    w.add_argument("--format", default="torchvision", help="torchvision | caffe2 | caffe2-jigsaw")
    w.add_argument("--out", required=True, help="the checkpoint to write, e.g. encoders/imagenet-resnet18/encoder.pt")
    w.add_argument("--dataset", default="imagenet", help="what the weights were trained on (recorded)")
    w.add_argument("--rgb", action="store_true", help="a Caffe2 file trained on RGB images (the "
                                                      "default reverses conv1's BGR channels)")
    w.set_defaults(func=import_weights)
    r = sub.add_parser("reproduce", help="pre-train, run every experiment through papermill, "
                                         "write results.csv and report.html")
    common(r)
    r.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: one notebook after another here; slurm: each stage a SLURM job "
                        "array through submitit (resources: reproduce.slurm); debug: submitit's "
                        "in-process executor, the slurm path without a cluster")
    r.add_argument("--dry-run", action="store_true",
                   help="print the grid, what is done, and estimated time per stage, peak device "
                        "memory and cache disk for this device; run nothing")
    r.add_argument("--assume-tflops", type=float, metavar="T",
                   help="with --dry-run: estimate the time for a device of T TFLOP/s from each "
                        "step's counted FLOPs (and operators) instead of timing steps here")
    r.set_defaults(func=reproduce)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        if getattr(args, "smoke", False):  # laid under the command line's own --set
            from .experiments.params import smoke
            args.set = smoke(args.profile, args.set, args.objective) + args.set
        return args.func(args) or 0
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
