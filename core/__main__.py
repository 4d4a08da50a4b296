"""Command line over the core: python -m core COMMAND ... (see --help)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from core.backbones.registry import DEFAULT_BACKBONE
from core.config import HEADS, TrainConfig, frozen_text, parse_frozen
from core.errors import StudioError

D = TrainConfig()  # every option's default comes from here


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

    backbone = load_backbone(DEFAULT_BACKBONE)
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


def _config_from_args(args) -> TrainConfig:
    """The TrainConfig the options ask for; options a command lacks keep TrainConfig's defaults."""
    from core.data.augment import AugmentConfig

    data = _data_spec(args.data)
    fraction = getattr(args, "fraction", D.fraction)
    return TrainConfig(dataset=data, backbone=args.model,
                       frozen_blocks=parse_frozen(getattr(args, "frozen_blocks", D.frozen_blocks)),
                       per_class=None if fraction else getattr(args, "per_class", D.per_class), fraction=fraction,
                       val_fraction=args.val, test_fraction=args.test,
                       augment=AugmentConfig.standard() if getattr(args, "augment", False) else AugmentConfig(),
                       head=getattr(args, "head", D.head), epochs=args.epochs, batch_size=args.batch_size,
                       learning_rate=args.lr, fine_tune_lr_factor=args.fine_tune_factor, two_phase=not args.one_phase,
                       early_stopping=args.patience, seed=args.seed, image_size=args.image_size,
                       cache_features=not args.no_cache, class_weight=getattr(args, "class_weight", False))


def _epoch_line(row: dict, epochs: int) -> str:
    values = " ".join(f"{k} {row[k]:.3f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy")
                      if row.get(k) is not None)
    return f"{row['phase']} epoch {row['epoch']}/{epochs} {values}".rstrip()


TRAIN_KEYS = ("train_accuracy", "val_accuracy", "val_accuracy_interval", "test_accuracy", "test_accuracy_interval",
              "val_balanced_accuracy", "val_macro_f1", "ece", "ece_before", "temperature", "val_unknown_share",
              "seconds")


def cmd_train(args) -> None:
    from core import jobs
    from core.runs import load_run

    config = _config_from_args(args).validate()
    run_id = jobs.submit(config)
    print(f"run {run_id} queued", flush=True)
    status = jobs.wait(run_id, on_status=_TrainPrinter(run_id, config.epochs))
    run = load_run(run_id)
    metrics = run.metrics()
    result = {"run_id": run_id, "dir": str(run.dir), "state": run.state, "message": status.get("message", ""),
              **{k: metrics.get(k) for k in TRAIN_KEYS}, "leak_check": run.dataset().get("leak_check", {}).get("text"),
              "overrides": len(run.dataset().get("overrides", {}).get("applied", []))}
    print(json.dumps(result))
    if run.state != "completed":
        raise SystemExit(1)


class _TrainPrinter:
    """Prints a training run as it goes: the dataset's validation summary once the worker has
    written it, each new stage, and each finished epoch."""

    def __init__(self, run_id: str, epochs: int):
        self.run_id, self.epochs = run_id, epochs
        self.phase, self.shown_epochs, self.shown_data = None, 0, False

    def __call__(self, status: dict) -> None:
        from core.data.dataset import validation_lines
        from core.runs import load_run

        run = load_run(self.run_id, verify=False)
        if not self.shown_data and (run.dir / "dataset.json").is_file():
            print("\n".join(validation_lines(run.dataset())), flush=True)
            self.shown_data = True
        phase = (status.get("progress") or {}).get("phase")
        if phase and phase != self.phase and phase not in ("head", "fine-tune"):
            print(phase, flush=True)
            self.phase = phase
        history = run.history()  # every finished epoch, from history.csv
        for row in history[self.shown_epochs:]:
            print(_epoch_line(row, self.epochs), flush=True)
        self.shown_epochs = len(history)


def cmd_runs(args) -> None:
    from core.run_summary import RunSummary
    from core.runs import list_runs

    columns = ["run", "state", "data", "backbone", "frozen", "head", "train acc", "val acc", "val 95% CI", "test acc",
               "test 95% CI"]
    rows = [RunSummary.of(run).row() for run in list_runs()]
    print(_table([["-" if r[c] is None else r[c] for c in columns] for r in rows], columns))


def cmd_predict(args) -> None:
    from core.batch import predict_batch
    from core.fileio import atomic_write_text
    from core.predict import predictions_csv

    def progress(done: int, total: int) -> None:
        print(f"predicted {done}/{total} images", file=sys.stderr, flush=True)

    batch = predict_batch(args.run, args.paths, k=args.top, progress=progress if args.csv else None)
    if not args.csv:
        for result in batch.as_results():
            print(json.dumps(result))
        return
    atomic_write_text(args.csv, predictions_csv(batch.as_results()))
    predicted = len(batch.predicted)
    print(json.dumps({"csv": args.csv, "images": len(batch.results), "predicted": predicted,
                      "unreadable": len(batch.results) - predicted, "skipped": len(batch.skipped),
                      "counts": batch.counts(), "engine": batch.engine, "seconds": round(batch.seconds, 2),
                      "images_per_second": round(len(batch.results) / max(batch.seconds, 1e-9), 1)}))


def cmd_views(args) -> None:
    from core.views import render_all

    for path in render_all(args.run, args.out):
        print(path)


def cmd_sweep(args) -> None:
    import time

    from core import sweeps
    from core.compare import comparison_rows

    if args.resume:
        sweep = sweeps.resume(args.resume)
    else:
        base = _config_from_args(args)
        frozen = tuple(parse_frozen(f) for f in args.frozen)
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
        if not sweep.active:
            break
        time.sleep(1.0)
    rows = comparison_rows([r for r in sweep.runs() if r is not None])
    if rows:
        cols = ["images", "share", "frozen", "trainable %", "augmentation", "head", "train acc", "val acc",
                "val 95% CI", "test acc", "test 95% CI", "seconds"]
        print(_table([[r[c] for c in cols] for r in rows], cols))
    print(json.dumps({"sweep_id": sweep.id, "runs": list(sweep.run_ids), "progress": sweep.progress()}))


def cmd_report(args) -> None:
    from core.report import write_report
    from core.slides import write_deck

    print((write_deck if args.slides else write_report)(args.target, args.out))


def cmd_export(args) -> None:
    from core.export import export_run

    result = export_run(args.run, args.format, args.out)
    print(json.dumps({"path": str(result.path), "format": result.format, "checked_images": result.checked_images,
                      "top1_agreement": result.top1_agreement, "max_abs_diff": result.max_abs_diff}))


class _StagePrinter:
    """progress(stage, done, total) as one line per stage and a line at most every second."""

    def __init__(self):
        self.stage, self.last = None, 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        import time

        now = time.monotonic()
        if stage != self.stage or done == total or now - self.last >= 1.0:
            print(f"{stage} {done}/{total}", flush=True)
            self.stage, self.last = stage, now


def _data_spec(text: str) -> str:
    """A demo name as it is, a folder or zip as an absolute path (the key runs and analyses share)."""
    from core.data.sources import DEMOS, check_data_spec

    check_data_spec(text)
    return text if text in DEMOS else str(Path(text).expanduser().resolve())


def cmd_analyze(args) -> None:
    from core.analysis import analyze

    analysis = analyze(_data_spec(args.data), args.model, per_class=None if args.fraction else args.per_class,
                       fraction=args.fraction, seed=args.seed, image_size=args.image_size, progress=_StagePrinter())
    print(json.dumps(analysis.to_json()))


def cmd_health(args) -> None:
    from core.data.sources import load_dataset
    from core.health import check_health, save

    health = check_health(load_dataset(_data_spec(args.data)), args.model, args.image_size, progress=_StagePrinter())
    save(health)
    print(json.dumps(health.to_json()))


def cmd_lr_find(args) -> None:
    from core.lr_find import find_for_config

    curve = find_for_config(_config_from_args(args).validate(), args.phase, progress=_StagePrinter())
    print(json.dumps(curve.to_json()))


def cmd_worker(args) -> None:
    from core.jobs import worker_main

    raise SystemExit(worker_main())


def _shared_parser() -> argparse.ArgumentParser:
    """Options every command that reads or writes runs takes."""
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--runs-dir", default=None, help="the run store (default: STUDIO_RUNS_DIR or STUDIO_HOME/runs)")
    return shared


def _training_parser() -> argparse.ArgumentParser:
    """The TrainConfig options train and sweep share, with TrainConfig's defaults."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--data", default=D.dataset, help="demo name (digits, faces), folder of class folders, or .zip")
    p.add_argument("--model", default=D.backbone, help=f"a backbone from `models` (default {DEFAULT_BACKBONE})")
    p.add_argument("--val", type=float, default=D.val_fraction, help="validation share of each class")
    p.add_argument("--test", type=float, default=D.test_fraction, help="test share of each class")
    p.add_argument("--epochs", type=int, default=D.epochs)
    p.add_argument("--batch-size", type=int, default=D.batch_size)
    p.add_argument("--lr", type=float, default=D.learning_rate, help="the head's learning rate")
    p.add_argument("--fine-tune-factor", type=float, default=D.fine_tune_lr_factor,
                   help="the unfrozen blocks fine-tune at lr x this factor; the head keeps lr")
    p.add_argument("--one-phase", action="store_true", help="skip the head-only first phase")
    p.add_argument("--patience", type=int, default=D.early_stopping, help="early stopping patience (epochs), 0 = off")
    p.add_argument("--seed", type=int, default=D.seed)
    p.add_argument("--image-size", type=int, default=D.image_size)
    p.add_argument("--no-cache", action="store_true", help="do not cache features at the cut")
    return p


def _add_train(sub, shared, training) -> None:
    p = sub.add_parser("train", parents=[shared, training],
                       help="train a run (in a worker process) and print its metrics as JSON")
    p.add_argument("--frozen-blocks", default=frozen_text(D.frozen_blocks),
                   help="number of blocks frozen from the input side, or 'all'")
    p.add_argument("--per-class", type=int, default=D.per_class)
    p.add_argument("--fraction", type=float, default=D.fraction, help="use this fraction of every class instead")
    p.add_argument("--augment", action="store_true")
    p.add_argument("--head", choices=HEADS, default=D.head)
    p.add_argument("--class-weight", action="store_true", help="weight the loss so every class counts the same")
    p.set_defaults(func=cmd_train)


def _add_sweep(sub, shared, training) -> None:
    p = sub.add_parser("sweep", parents=[shared, training], help="train a grid of runs and print the comparison table")
    p.add_argument("--sizes", type=int, nargs="+", default=[20, 50], help="images per class")
    p.add_argument("--frozen", nargs="+", default=[frozen_text(D.frozen_blocks)], help="frozen blocks, e.g. all 15")
    p.add_argument("--augment-grid", choices=["off", "on", "both"], default="off")
    p.add_argument("--heads", nargs="+", default=[D.head], choices=HEADS)
    p.add_argument("--models", nargs="+", default=None, help="backbones (default: --model)")
    p.add_argument("--name", default="")
    p.add_argument("--resume", default=None, help="resume this sweep id instead of starting one")
    p.add_argument("--no-wait", action="store_true")
    p.set_defaults(func=cmd_sweep)


def _add_analyze(sub) -> None:
    p = sub.add_parser("analyze", help="probe every block and forecast accuracy with more data; JSON last")
    p.add_argument("--data", default=D.dataset, help="demo name (digits, faces), folder of class folders, or .zip")
    p.add_argument("--model", default=D.backbone, help=f"a backbone from `models` (default {DEFAULT_BACKBONE})")
    p.add_argument("--per-class", type=int, default=D.per_class, help="images sampled per class")
    p.add_argument("--fraction", type=float, default=None, help="sample this fraction of every class instead")
    p.add_argument("--seed", type=int, default=D.seed)
    p.add_argument("--image-size", type=int, default=D.image_size)
    p.set_defaults(func=cmd_analyze)


def _add_health(sub) -> None:
    p = sub.add_parser("health", help="label issues, near duplicates, imbalance and odd images; JSON last")
    p.add_argument("--data", default=D.dataset, help="demo name (digits, faces), folder of class folders, or .zip")
    p.add_argument("--model", default=D.backbone, help=f"a backbone from `models` (default {DEFAULT_BACKBONE})")
    p.add_argument("--image-size", type=int, default=D.image_size)
    p.set_defaults(func=cmd_health)


def _add_lr_find(sub, training) -> None:
    p = sub.add_parser("lr-find", parents=[training], help="loss against a growing learning rate; JSON last")
    p.add_argument("--phase", choices=["head", "fine-tune"], default="head",
                   help="the head on the vectors, or the unfrozen blocks after the head phase")
    p.add_argument("--frozen-blocks", default=frozen_text(D.frozen_blocks),
                   help="number of blocks frozen from the input side, or 'all'")
    p.add_argument("--per-class", type=int, default=D.per_class)
    p.add_argument("--fraction", type=float, default=D.fraction, help="use this fraction of every class instead")
    p.set_defaults(func=cmd_lr_find)


def _add_run_commands(sub, shared) -> None:
    """Commands on one finished run (or sweep)."""
    p = sub.add_parser("predict", parents=[shared], help="predict images with a completed run; one JSON line each, "
                       "or a CSV with --csv")
    p.add_argument("run")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (searched recursively) and zips")
    p.add_argument("--top", type=int, default=3)
    p.add_argument("--csv", metavar="FILE", help="write one row per image to FILE and print a summary line")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("views", parents=[shared], help="render every insight view of a run to PNG files")
    p.add_argument("run")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_views)
    p = sub.add_parser("report", parents=[shared], help="write a self-contained HTML report (or slide deck) of a run "
                       "or a sweep")
    p.add_argument("target", help="run id or sweep id")
    p.add_argument("--out", required=True)
    p.add_argument("--slides", action="store_true", help="a slide deck: one full-screen slide per result, arrow "
                   "keys to move, F for full screen, one slide per printed page")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("export", parents=[shared], help="export a run's model (checked against the run after writing)")
    p.add_argument("run")
    p.add_argument("--format", choices=["savedmodel", "keras", "tflite"], required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Transfer Learning Studio core")
    sub = parser.add_subparsers(dest="command", required=True)
    shared, training = _shared_parser(), _training_parser()
    sub.add_parser("models", help="list the backbone registry").set_defaults(func=cmd_models)
    sub.add_parser("prepare", help="convert the bundled weights and export the TF Hub copy").set_defaults(
        func=cmd_prepare)
    sub.add_parser("datasets", help="list the bundled demo datasets").set_defaults(func=cmd_datasets)
    p = sub.add_parser("imagenet", help="top-k ImageNet labels from the bundled classifier")
    p.add_argument("images", nargs="+")
    p.add_argument("--top", type=int, default=5)
    p.set_defaults(func=cmd_imagenet)
    _add_analyze(sub)
    _add_health(sub)
    _add_lr_find(sub, training)
    _add_train(sub, shared, training)
    sub.add_parser("runs", parents=[shared], help="list runs").set_defaults(func=cmd_runs)
    _add_sweep(sub, shared, training)
    _add_run_commands(sub, shared)
    sub.add_parser("worker", help="(internal) train the oldest queued run, then exit").set_defaults(func=cmd_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "runs_dir", None):
        os.environ["STUDIO_RUNS_DIR"] = str(args.runs_dir)
    try:
        args.func(args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
