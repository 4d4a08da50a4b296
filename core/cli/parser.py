"""The parser of `python -m core`: each command with the option groups it takes (core.cli.options)."""

from __future__ import annotations

import argparse

from core.backbones.depth import frozen_text
from core.cli import commands as c
from core.cli.options import (
    DEPTH_DEFAULTS,
    HEAD_DEFAULTS,
    SAMPLE_DEFAULTS,
    D,
    data_options,
    depth_options,
    fit_options,
    head_options,
    runs_options,
    sample_options,
    seed_options,
)
from core.inference.formats import FORMATS
from core.model.acquisition import STRATEGIES
from core.training.config import HEADS


def _add_data_commands(sub) -> None:
    """Commands on the backbones and the images, before any run."""
    sub.add_parser("models", help="list the backbone registry").set_defaults(func=c.cmd_models)
    p = sub.add_parser("prepare", help="convert the bundled weights and export the TF Hub copy")
    p.add_argument("--models", nargs="+", default=None,
                   help="convert these bundled backbones instead, e.g. efficientnet_lite1,efficientnet_lite2")
    p.set_defaults(func=c.cmd_prepare)
    sub.add_parser("datasets", help="list the bundled demo datasets").set_defaults(func=c.cmd_datasets)
    p = sub.add_parser("imagenet", help="top-k ImageNet labels from the bundled classifier")
    p.add_argument("images", nargs="+")
    p.add_argument("--top", type=int, default=5)
    p.set_defaults(func=c.cmd_imagenet)
    p = sub.add_parser("analyze", parents=[data_options(), sample_options(), seed_options()],
                       help="probe every block and forecast accuracy with more data; JSON last")
    p.add_argument("--models", nargs="+", default=None,
                   help="compare these backbones instead (commas or spaces; random_init is Lite0 untrained)")
    p.set_defaults(func=c.cmd_analyze)
    p = sub.add_parser("suggest", parents=[runs_options(), data_options(), seed_options()],
                       help="which unlabelled pool images to label next; JSON last")
    p.add_argument("--pool", required=True, help="a folder or .zip of unlabelled images (any folders)")
    p.add_argument("--run", default=None, help="guess with this completed run (default: a head on the labelled data)")
    p.add_argument("--n", type=int, default=20, help="images to suggest")
    p.add_argument("--strategy", choices=STRATEGIES, default="auto",
                   help="auto: typical and diverse picks while labels are few, then the least sure")
    p.set_defaults(func=c.cmd_suggest)
    p = sub.add_parser("label", parents=[data_options()],
                       help="add pool images to the dataset with their classes, from a CSV of file,class rows")
    p.add_argument("--pool", required=True, help="the pool the files are in")
    p.add_argument("--csv", required=True, help="rows file,class (file as `suggest` names it)")
    p.set_defaults(func=c.cmd_label)
    p = sub.add_parser("features", parents=[data_options()],
                       help="fill the feature store for a dataset, on a Ray cluster when one is given; JSON last")
    p.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="shard the forward pass over this Ray cluster (default: STUDIO_RAY_ADDRESS, else here)")
    p.set_defaults(func=c.cmd_features)
    sub.add_parser("health", parents=[data_options()],
                   help="label issues, near duplicates, imbalance and odd images; JSON last").set_defaults(
        func=c.cmd_health)


def _add_training_commands(sub) -> None:
    p = sub.add_parser("lr-find", parents=[data_options(), sample_options(), seed_options(), depth_options(),
                                           fit_options()], help="loss against a growing learning rate; JSON last")
    p.add_argument("--phase", choices=["head", "fine-tune"], default="head",
                   help="the head on the vectors, or the unfrozen blocks after the head phase")
    p.set_defaults(func=c.cmd_lr_find, **HEAD_DEFAULTS)
    sub.add_parser("train", parents=[runs_options(), data_options(), sample_options(), seed_options(),
                                     depth_options(), head_options(), fit_options()],
                   help="train a run (in a worker process) and print its metrics as JSON").set_defaults(
        func=c.cmd_train)
    p = sub.add_parser("sweep", parents=[runs_options(), data_options(), seed_options(), fit_options()],
                       help="train a grid of runs and print the comparison table")
    p.add_argument("--sizes", type=int, nargs="+", default=[20, 50], help="images per class")
    p.add_argument("--frozen", nargs="+", default=[frozen_text(D.frozen_blocks)], help="frozen blocks, e.g. all 15")
    p.add_argument("--augment-grid", choices=["off", "on", "both"], default="off")
    p.add_argument("--heads", nargs="+", default=[D.head], choices=HEADS)
    p.add_argument("--models", nargs="+", default=None, help="backbones (default: --model)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="repeat every point with these seeds "
                   "(default: --seed)")
    p.add_argument("--name", default="")
    p.add_argument("--resume", default=None, help="resume this sweep id instead of starting one")
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="train the runs on this Ray cluster (default: STUDIO_RAY_ADDRESS, else this machine)")
    p.set_defaults(func=c.cmd_sweep, **SAMPLE_DEFAULTS, **DEPTH_DEFAULTS, **HEAD_DEFAULTS)
    sub.add_parser("worker", parents=[runs_options()],
                   help="(internal) train the oldest queued run, then exit").set_defaults(func=c.cmd_worker)
    p = sub.add_parser("dispatch", parents=[runs_options()],
                       help="(internal) send the runs queued for a Ray cluster to it, then exit")
    p.add_argument("--cluster", required=True, metavar="ADDRESS")
    p.set_defaults(func=c.cmd_dispatch)


def _add_run_commands(sub) -> None:
    """Commands on finished runs (or a sweep)."""
    runs = runs_options()
    sub.add_parser("runs", parents=[runs], help="list runs").set_defaults(func=c.cmd_runs)
    p = sub.add_parser("predict", parents=[runs], help="predict images with a completed run; one JSON line each, "
                       "or a CSV with --csv")
    p.add_argument("run")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (searched recursively) and zips")
    p.add_argument("--top", type=int, default=3)
    p.add_argument("--csv", metavar="FILE", help="write one row per image to FILE and print a summary line")
    p.set_defaults(func=c.cmd_predict)
    p = sub.add_parser("views", parents=[runs], help="render every insight view of a run to PNG files")
    p.add_argument("run")
    p.add_argument("--out", required=True)
    p.set_defaults(func=c.cmd_views)
    p = sub.add_parser("report", parents=[runs], help="write a self-contained HTML report (or slide deck) of a run "
                       "or a sweep")
    p.add_argument("target", help="run id or sweep id")
    p.add_argument("--out", required=True)
    p.add_argument("--slides", action="store_true", help="a slide deck: one full-screen slide per result, arrow "
                   "keys to move, F for full screen, one slide per printed page")
    p.set_defaults(func=c.cmd_report)
    p = sub.add_parser("export", parents=[runs], help="export a run's model (checked against the run after writing)")
    p.add_argument("run")
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=c.cmd_export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Transfer Learning Studio core")
    parser.set_defaults(runs_dir=None)  # the commands on runs take --runs-dir
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data_commands(sub)
    _add_training_commands(sub)
    _add_run_commands(sub)
    return parser
