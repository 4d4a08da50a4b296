"""The commands of `python -m core`: each reads its parsed options, calls the core and prints."""

from __future__ import annotations

import json
import sys

from core.backbones.depth import parse_frozen
from core.backbones.registry import DEFAULT_BACKBONE
from core.cli.options import config_from_args, data_spec, model_list, run_store
from core.cli.output import StagePrinter, TrainPrinter, table


def cmd_models(args) -> None:
    from core.backbones import architecture_summary, available_offline, list_specs

    rows = []
    for spec in list_specs():
        summary = architecture_summary(spec)
        blocks, params = summary if summary else ("-", "-")
        rows.append([spec.name, spec.source, f"{spec.input_size}x{spec.input_size}", blocks,
                     f"{params:,}" if isinstance(params, int) else params,
                     "yes" if available_offline(spec) else "needs download"])
    print(table(rows, ["name", "source", "input", "blocks", "parameters", "offline"]))


def cmd_prepare(args) -> None:
    from core import paths
    from core.backbones import bundled
    from core.backbones.tflite_run import gpu_present

    progress = StagePrinter()
    gpus = "a GPU" if gpu_present() else "the CPU (no GPU found)"
    print(f"TensorFlow will run on {gpus}; its own log lines go to {paths.native_log()}", flush=True)
    states = {name: bundled.prepare(name, progress) for name in model_list(args.models) or (DEFAULT_BACKBONE,)}
    print(json.dumps(states[DEFAULT_BACKBONE] if list(states) == [DEFAULT_BACKBONE] else states))


def cmd_imagenet(args) -> None:
    import numpy as np

    from core.backbones import load_backbone
    from core.data.decode import load_array
    from core.inference import imagenet

    backbone = load_backbone(DEFAULT_BACKBONE)
    images = np.stack([load_array(path, backbone.input_size, crop=True) for path in args.images])
    for path, top in zip(args.images, imagenet.top_k(backbone.imagenet_classifier(), images, k=args.top), strict=True):
        print(f"{path}:")
        for index, name, p in top:
            print(f"  {p:6.3f}  {index:4d}  {name}")


def cmd_datasets(args) -> None:
    from core.data.sources import DEMOS, demo_folder

    rows = []
    for demo in DEMOS.values():
        folder = demo_folder(demo.name)
        rows.append([demo.name, demo.classes, f"{demo.images:,}", demo.source, demo.description, str(folder)])
    print(table(rows, ["name", "classes", "images", "source", "description", "folder"]))


TRAIN_KEYS = ("train_accuracy", "val_accuracy", "val_accuracy_interval", "test_accuracy", "test_accuracy_interval",
              "val_balanced_accuracy", "val_macro_f1", "ece", "ece_before", "temperature", "val_unknown_share",
              "seconds")


def cmd_train(args) -> None:
    from core.runs import executors

    store, config = run_store(args), config_from_args(args).validate()
    run_id = executors.current(store).submit(config)
    print(f"run {run_id} queued", flush=True)
    status = executors.wait(store, run_id, on_status=TrainPrinter(store, run_id, config.epochs))
    run = store.load(run_id)
    metrics = run.metrics()
    result = {"run_id": run_id, "dir": str(run.dir), "state": run.state, "message": status.get("message", ""),
              **{k: metrics.get(k) for k in TRAIN_KEYS}, "leak_check": run.dataset().get("leak_check", {}).get("text"),
              "overrides": len(run.dataset().get("overrides", {}).get("applied", []))}
    print(json.dumps(result))
    if run.state != "completed":
        raise SystemExit(1)


def cmd_runs(args) -> None:
    from core.runs.summary import RunSummary

    columns = ["run", "state", "data", "backbone", "frozen", "head", "train acc", "val acc", "val 95% CI", "test acc",
               "test 95% CI"]
    rows = [RunSummary.of(run).row() for run in run_store(args).runs()]
    print(table([["-" if r[c] is None else r[c] for c in columns] for r in rows], columns))


def cmd_predict(args) -> None:
    from core.fileio import atomic_write_text
    from core.inference.batch import predict_batch
    from core.inference.predict import predictions_csv

    def progress(done: int, total: int) -> None:
        print(f"predicted {done}/{total} images", file=sys.stderr, flush=True)

    batch = predict_batch(run_store(args), args.run, args.paths, k=args.top, progress=progress if args.csv else None)
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
    from core.present.views import render_all

    for path in render_all(run_store(args).load(args.run), args.out):
        print(path)


def cmd_sweep(args) -> None:
    import time

    from core.runs import executors, sweeps
    from core.runs.runs_table import comparison_rows

    store = run_store(args)
    executor = executors.current(store, args.cluster)
    if executor.kind != "local":
        info = executor.info()
        print(info.sentence(), flush=True)
        if info.problem:
            raise SystemExit(1)
    if args.resume:
        sweep = sweeps.resume(store, args.resume, executor=executor)
    else:
        base = config_from_args(args)
        frozen = tuple(parse_frozen(f) for f in args.frozen)
        augment = {"off": (False,), "on": (True,), "both": (False, True)}[args.augment_grid]
        spec = sweeps.SweepSpec(
            base=base,
            per_class=tuple(args.sizes),
            frozen_blocks=frozen,
            augment=augment,
            heads=tuple(args.heads),
            backbones=model_list(args.models),
            seeds=tuple(args.seeds or ()),
        )
        sweep = sweeps.create_sweep(store, spec, args.name or "", executor=executor)
    print(f"sweep {sweep.id}: {len(sweep.run_ids)} runs", flush=True)
    last = None
    while not args.no_wait:
        sweep = sweeps.load_sweep(store, sweep.id)
        progress = sweep.progress()
        if progress != last:
            print(json.dumps(progress), flush=True)
            last = progress
        if not sweep.active:
            break
        executors.ensure_all(store)  # a worker or dispatcher that died is replaced
        time.sleep(1.0)
    rows = comparison_rows([r for r in sweep.runs() if r is not None])
    if rows:
        several = len({r["backbone"] for r in rows}) > 1
        seeds = len({r["seed"] for r in rows}) > 1
        cols = ["backbone"] * several + ["images", "share", "frozen", "trainable %", "augmentation", "head"] + \
            ["seed"] * seeds + ["train acc", "val acc", "val 95% CI", "test acc", "test 95% CI", "seconds"]
        print(table([[r[c] for c in cols] for r in rows], cols))
    print(json.dumps({"sweep_id": sweep.id, "runs": list(sweep.run_ids), "progress": sweep.progress()}))


def cmd_report(args) -> None:
    from core.present.report import write_report

    print(write_report(run_store(args), args.target, args.out, slides=args.slides))


def cmd_export(args) -> None:
    from core.inference.export import export_run

    result = export_run(run_store(args), args.run, args.format, args.out)
    print(json.dumps({"path": str(result.path), "format": result.format, "checked_images": result.checked_images,
                      "top1_agreement": result.top1_agreement, "max_abs_diff": result.max_abs_diff}))


def cmd_analyze(args) -> None:
    from core.analysis import analyze

    if args.models:
        return _compare(args)
    analysis = analyze(data_spec(args.data), args.model, per_class=None if args.fraction else args.per_class,
                       fraction=args.fraction, seed=args.seed, image_size=args.image_size, progress=StagePrinter())
    print(json.dumps(analysis.to_json()))


def _compare(args) -> None:
    from core.analysis.compare import compare
    from core.present.tables import backbone_rows

    comparison = compare(data_spec(args.data), list(model_list(args.models)),
                         per_class=None if args.fraction else args.per_class, fraction=args.fraction,
                         seed=args.seed, progress=StagePrinter())
    rows = backbone_rows(comparison)
    print(table([list(r.values()) for r in rows], list(rows[0])))
    print(f"suggested: {comparison.reason}")
    print(json.dumps(comparison.to_json()))


def cmd_health(args) -> None:
    from core.data.sources import load_dataset
    from core.health import check_health, save

    health = check_health(load_dataset(data_spec(args.data)), args.model, image_size=args.image_size,
                          progress=StagePrinter())
    save(health)
    print(json.dumps(health.to_json()))


def cmd_features(args) -> None:
    from core.backbones import get_spec
    from core.data.sources import load_dataset
    from core.features.fill import fill_here
    from core.runs import executors

    items = load_dataset(data_spec(args.data)).items
    size, where = args.image_size or get_spec(args.model).input_size, executors.address(args.cluster)
    if where:
        from core.runs.shards import fill

        filled = fill(items, args.model, size, where, StagePrinter())
    else:
        filled = fill_here(items, args.model, size, StagePrinter())
    print(json.dumps(filled.to_json()))


def cmd_lr_find(args) -> None:
    from core.training.lr_find import find_for_config

    curve = find_for_config(config_from_args(args).validate(), args.phase, progress=StagePrinter())
    print(json.dumps(curve.to_json()))


def cmd_worker(args) -> None:
    from core.runs.jobs import worker_main

    raise SystemExit(worker_main(run_store(args)))


def cmd_dispatch(args) -> None:
    from core.runs.dispatch import dispatch_main

    raise SystemExit(dispatch_main(run_store(args), args.cluster))


def cmd_suggest(args) -> None:
    from core.inference.suggest import suggest

    run = run_store(args).load(args.run) if args.run else None
    found = suggest(data_spec(args.data), args.pool, run=run, n=args.n, strategy=args.strategy,
                    seed=args.seed, progress=StagePrinter())
    print(json.dumps(found.to_json()))


def cmd_label(args) -> None:
    from core.data.labels_csv import read_labels
    from core.data.pool import against, label_pool
    from core.data.sources import load_dataset, load_pool

    labels = read_labels(args.csv)
    dataset = load_dataset(data_spec(args.data))
    done = label_pool(dataset, against(load_pool(args.pool), dataset), labels)
    for file, label in done.added:
        print(f"added {file} as {label}")
    for file, why in done.refused:
        print(f"refused {file}: {why}")
    if done.refused:
        print(f"nothing was written: mend the {len(done.refused)} refused row(s) in {args.csv} and run it again")
    print(json.dumps(done.to_json()))
    if done.refused:
        raise SystemExit(1)
