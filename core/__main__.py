"""Command line over the core: python -m core COMMAND ... (see --help)."""

from __future__ import annotations

import argparse
import json
import sys

from pathlib import Path

from core.config import TrainConfig
from core.errors import StudioError

TRAIN_DEFAULTS = TrainConfig()


def _table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_models(args) -> None:
    from core.backbones import architecture_summary, available_offline, list_specs

    rows = []
    for spec in list_specs():
        summary = architecture_summary(spec)
        blocks, params = summary if summary else ("-", "-")
        rows.append([spec.name, spec.source, f"{spec.input_size}x{spec.input_size}", blocks,
                     f"{params:,}" if isinstance(params, int) else params,
                     "yes" if available_offline(spec) else "needs download"])
    print(_table(rows, ["name", "source", "input", "blocks", "parameters", "offline"]))


def cmd_prepare(args) -> None:
    from core.backbones import bundled

    print(json.dumps(bundled.prepare()))


def cmd_imagenet(args) -> None:
    import numpy as np

    from core import imagenet
    from core.backbones import load_backbone
    from core.data.decode import load_array

    backbone = load_backbone("efficientnet_lite0")
    images = np.stack([load_array(path, backbone.input_size, crop=True) for path in args.images])
    for path, top in zip(args.images, imagenet.top_k(backbone.imagenet_classifier(), images, k=args.top)):
        print(f"{path}:")
        for index, name, p in top:
            print(f"  {p:6.3f}  {index:4d}  {name}")


def cmd_datasets(args) -> None:
    from core.data.sources import DEMOS, demo_folder

    rows = []
    for demo in DEMOS.values():
        folder = demo_folder(demo.name)
        rows.append([demo.name, demo.classes, f"{demo.images:,}", demo.source, demo.description, str(folder)])
    print(_table(rows, ["name", "classes", "images", "source", "description", "folder"]))


def _config_from_args(args):
    from pathlib import Path

    from core.config import ALL, TrainConfig
    from core.data.augment import AugmentConfig
    from core.data.sources import DEMOS, check_data_spec

    check_data_spec(args.data)
    data = args.data if args.data in DEMOS else str(Path(args.data).expanduser().resolve())
    frozen = ALL if args.frozen_blocks == "all" else int(args.frozen_blocks)
    return TrainConfig(dataset=data, backbone=args.model, frozen_blocks=frozen,
                       per_class=None if args.fraction else args.per_class, fraction=args.fraction,
                       val_fraction=args.val, test_fraction=args.test,
                       augment=AugmentConfig.standard() if args.augment else AugmentConfig(), head=args.head,
                       epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                       fine_tune_lr_factor=args.fine_tune_factor, two_phase=not args.one_phase,
                       early_stopping=args.patience, seed=args.seed, image_size=args.image_size,
                       cache_features=not args.no_cache)


def _set_runs_dir(args) -> None:
    import os

    if getattr(args, "runs_dir", None):
        os.environ["STUDIO_RUNS_DIR"] = str(args.runs_dir)


def _epoch_line(row: dict, epochs: int) -> str:
    values = " ".join(f"{k} {row[k]:.3f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy")
                      if row.get(k) is not None)
    return f"{row['phase']} epoch {row['epoch']}/{epochs} {values}".rstrip()


def cmd_train(args) -> None:
    from core import jobs
    from core.runs import load_run

    _set_runs_dir(args)
    config = _config_from_args(args).validate()
    run_id = jobs.submit(config)
    print(f"run {run_id} queued", flush=True)
    shown = {"phase": None, "epochs": 0}

    def show(status):
        phase = (status.get("progress") or {}).get("phase")
        if phase and phase != shown["phase"] and phase not in ("head", "fine-tune"):
            print(phase, flush=True)
            shown["phase"] = phase
        history = load_run(run_id).history()  # every finished epoch, from history.csv
        for row in history[shown["epochs"]:]:
            print(_epoch_line(row, config.epochs), flush=True)
        shown["epochs"] = len(history)

    status = jobs.wait(run_id, on_status=show)
    run = load_run(run_id)
    metrics = run.metrics()
    result = {"run_id": run_id, "dir": str(run.dir), "state": run.state, "message": status.get("message", ""),
              **{k: metrics.get(k) for k in ("train_accuracy", "val_accuracy", "test_accuracy", "seconds")}}
    print(json.dumps(result))
    if run.state != "completed":
        raise SystemExit(1)


def cmd_runs(args) -> None:
    from core.runs import list_runs

    _set_runs_dir(args)
    rows = []
    for run in list_runs():
        m = run.metrics() if run.state == "completed" else {}
        acc = lambda k: f"{m[k]:.3f}" if m.get(k) is not None else "-"  # noqa: E731
        c = run.config
        rows.append([run.id, run.state, Path(c.dataset).name, c.backbone, "all" if c.frozen_blocks < 0 else
                     c.frozen_blocks, c.head, acc("train_accuracy"), acc("val_accuracy"), acc("test_accuracy")])
    print(_table(rows, ["run", "state", "data", "backbone", "frozen", "head", "train", "val", "test"]))


def cmd_predict(args) -> None:
    from core.predict import predict_sources

    _set_runs_dir(args)
    for result in predict_sources(args.run, [(p, p) for p in args.images], k=args.top):
        print(json.dumps(result))


def cmd_views(args) -> None:
    from core.views import render_all

    _set_runs_dir(args)
    for path in render_all(args.run, args.out):
        print(path)


def cmd_sweep(args) -> None:
    import time

    from core import sweeps
    from core.compare import comparison_rows

    _set_runs_dir(args)
    if args.resume:
        sweep = sweeps.resume(args.resume)
    else:
        base = _config_from_args(args)
        frozen = tuple(-1 if f == "all" else int(f) for f in args.frozen)
        augment = {"off": (False,), "on": (True,), "both": (False, True)}[args.augment_grid]
        spec = sweeps.SweepSpec(base, tuple(args.sizes), frozen, augment, tuple(args.heads), tuple(args.models or ()))
        sweep = sweeps.create_sweep(spec, args.name or "")
    print(f"sweep {sweep.id}: {len(sweep.run_ids)} runs", flush=True)
    last = None
    while not args.no_wait:
        sweep = sweeps.load_sweep(sweep.id)
        progress = sweep.progress()
        if progress != last:
            print(json.dumps(progress), flush=True)
            last = progress
        if all(state in ("completed", "failed", "cancelled", "damaged") for state in progress):
            break
        time.sleep(1.0)
    rows = comparison_rows([r for r in sweep.runs() if r is not None])
    if rows:
        cols = ["images", "share", "frozen", "trainable %", "augmentation", "head", "train acc", "val acc",
                "test acc", "seconds"]
        print(_table([[r[c] for c in cols] for r in rows], cols))
    print(json.dumps({"sweep_id": sweep.id, "runs": list(sweep.run_ids), "progress": sweep.progress()}))


def cmd_report(args) -> None:
    from core.report import write_report

    _set_runs_dir(args)
    print(write_report(args.target, args.out))


def cmd_export(args) -> None:
    from core.export import export_run

    _set_runs_dir(args)
    result = export_run(args.run, args.format, args.out)
    print(json.dumps({"path": str(result.path), "format": result.format, "checked_images": result.checked_images,
                      "top1_agreement": result.top1_agreement, "max_abs_diff": result.max_abs_diff}))


def cmd_worker(args) -> None:
    from core.jobs import worker_main

    raise SystemExit(worker_main())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Transfer Learning Studio core")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list the backbone registry").set_defaults(func=cmd_models)
    sub.add_parser("prepare", help="convert the bundled weights and export the TF Hub copy").set_defaults(
        func=cmd_prepare)
    sub.add_parser("datasets", help="list the bundled demo datasets").set_defaults(func=cmd_datasets)
    p = sub.add_parser("imagenet", help="top-k ImageNet labels from the bundled classifier")
    p.add_argument("images", nargs="+")
    p.add_argument("--top", type=int, default=5)
    p.set_defaults(func=cmd_imagenet)
    p = sub.add_parser("train", help="train a run (in a worker process) and print its metrics as JSON")
    p.add_argument("--data", default="digits", help="demo name (digits, faces), folder of class folders, or .zip")
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--frozen-blocks", default="all", help="number of blocks frozen from the input side, or 'all'")
    p.add_argument("--per-class", type=int, default=20)
    p.add_argument("--fraction", type=float, default=None, help="use this fraction of every class instead")
    p.add_argument("--val", type=float, default=0.2)
    p.add_argument("--test", type=float, default=0.1)
    p.add_argument("--augment", action="store_true")
    p.add_argument("--head", choices=["dense", "logreg", "svm"], default="dense")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=TRAIN_DEFAULTS.learning_rate)
    p.add_argument("--fine-tune-factor", type=float, default=0.1)
    p.add_argument("--one-phase", action="store_true", help="skip the head-only first phase")
    p.add_argument("--patience", type=int, default=0, help="early stopping patience (epochs), 0 = off")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--no-cache", action="store_true", help="do not cache features at the cut")
    p.add_argument("--runs-dir", default=None)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("runs", help="list runs")
    p.add_argument("--runs-dir", default=None)
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("predict", help="predict images with a completed run; one JSON line per image")
    p.add_argument("run")
    p.add_argument("images", nargs="+")
    p.add_argument("--top", type=int, default=3)
    p.add_argument("--runs-dir", default=None)
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("views", help="render every insight view of a run to PNG files")
    p.add_argument("run")
    p.add_argument("--out", required=True)
    p.add_argument("--runs-dir", default=None)
    p.set_defaults(func=cmd_views)
    p = sub.add_parser("sweep", help="train a grid of runs and print the comparison table")
    p.add_argument("--data", default="digits")
    p.add_argument("--sizes", type=int, nargs="+", default=[20, 50], help="images per class")
    p.add_argument("--frozen", nargs="+", default=["all"], help="frozen blocks values, e.g. all 15")
    p.add_argument("--augment-grid", choices=["off", "on", "both"], default="off")
    p.add_argument("--heads", nargs="+", default=["dense"], choices=["dense", "logreg", "svm"])
    p.add_argument("--models", nargs="+", default=None, help="backbones (default: --model)")
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="")
    p.add_argument("--resume", default=None, help="resume this sweep id instead of starting one")
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--runs-dir", default=None)
    p.set_defaults(func=cmd_sweep, frozen_blocks="all", per_class=20, fraction=None, val=0.2, test=0.1, augment=False,
                   head="dense", batch_size=32, lr=TRAIN_DEFAULTS.learning_rate, fine_tune_factor=0.1,
                   one_phase=False, patience=0, image_size=None, no_cache=False)
    p = sub.add_parser("report", help="write a self-contained HTML report of a run or a sweep")
    p.add_argument("target", help="run id or sweep id")
    p.add_argument("--out", required=True)
    p.add_argument("--runs-dir", default=None)
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("export", help="export a run's model (checked against the run after writing)")
    p.add_argument("run")
    p.add_argument("--format", choices=["savedmodel", "keras", "tflite"], required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--runs-dir", default=None)
    p.set_defaults(func=cmd_export)
    sub.add_parser("worker", help="(internal) train the oldest queued run, then exit").set_defaults(func=cmd_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
