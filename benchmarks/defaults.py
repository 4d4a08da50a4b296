"""Which defaults make the field's lessons come true: measured on both demo datasets.

    .venv/bin/python -m benchmarks.defaults            # about 30 minutes on a 2-core CPU
    .venv/bin/python -m benchmarks.defaults --quick    # one seed, digits only

1. Fine-tuning the last 3 blocks of the bundled model at 50 images per class, against feature
   extraction, for several fine-tune rate factors (the head trains at the default rate first).
2. Pretrained against random initialisation: the same settings on efficientnet_lite0_random
   (features only, the last 3 blocks fine-tuned), and every block trained from scratch against every
   block fine-tuned from ImageNet.
3. Augmentation at 20 images per class, feature extraction, on and off.

Every case is repeated over seeds (each seed draws its own sample and split). One JSON line per
run, then one summary line per case (mean and std of validation and test accuracy).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from core.backbones.depth import ALL
from core.data.augment import AugmentConfig
from core.data.sampling import sample, split
from core.data.sources import load_dataset
from core.training.config import TrainConfig

DATASETS = ("digits", "faces")
FACTORS = (0.1, 0.01, 0.001)
LAST_THREE = 15  # of the bundled model's 18 blocks


def emit(row: dict) -> dict:
    print(json.dumps(row), flush=True)
    return row


def run_case(case: str, dataset: str, per_class: int, config: TrainConfig, seeds: list[int]) -> dict:
    from core.training.trainer import train

    val, test = [], []
    for seed in seeds:
        parts = split(sample(load_dataset(dataset), per_class=per_class, seed=seed).items, 0.2, 0.1, seed)
        start = time.perf_counter()
        result = train(config.with_(dataset=dataset, per_class=per_class, seed=seed), parts)
        val.append(result.metrics["val_accuracy"])
        test.append(result.metrics["test_accuracy"])
        emit({"case": case, "dataset": dataset, "seed": seed, "val_acc": round(val[-1], 3),
              "test_acc": round(test[-1], 3), "seconds": round(time.perf_counter() - start, 1)})
    return emit({"summary": case, "dataset": dataset, "per_class": per_class, "seeds": len(seeds),
                 "val_mean": round(float(np.mean(val)), 3), "val_std": round(float(np.std(val)), 3),
                 "test_mean": round(float(np.mean(test)), 3), "test_std": round(float(np.std(test)), 3)})


def fine_tune_rates(datasets, seeds, factors) -> None:
    base = TrainConfig(epochs=10)
    for dataset in datasets:
        run_case("feature extraction", dataset, 50, base, seeds)
        for factor in factors:
            run_case(f"fine-tune last 3, factor {factor:g}", dataset, 50,
                     base.with_(frozen_blocks=LAST_THREE, fine_tune_lr_factor=factor), seeds)


def pretrained_vs_random(datasets, seeds, factor: float) -> None:
    random = TrainConfig(epochs=10, backbone="efficientnet_lite0_random")
    for dataset in datasets:
        run_case("random weights, features only", dataset, 50, random, seeds)
        run_case(f"random weights, last 3 fine-tuned (factor {factor:g})", dataset, 50,
                 random.with_(frozen_blocks=LAST_THREE, fine_tune_lr_factor=factor), seeds)
    # Every block trained from scratch (Adam at 1e-3, BatchNorm in training mode) against every block
    # fine-tuned from ImageNet with the defaults (the head first, then every block at the fine-tuning rate);
    # one seed each (minutes per run).
    scratch = TrainConfig(epochs=10, frozen_blocks=0, two_phase=False, learning_rate=1e-3, fine_tune_lr_factor=1.0,
                          backbone="efficientnet_lite0_random")
    for dataset in datasets:
        run_case("random weights, every block trained from scratch", dataset, 50, scratch, seeds[:1])
        run_case(f"pretrained, every block fine-tuned (factor {factor:g})", dataset, 50,
                 TrainConfig(epochs=10, frozen_blocks=0, fine_tune_lr_factor=factor), seeds[:1])


def augmentation(datasets, seeds) -> None:
    base = TrainConfig(epochs=10, frozen_blocks=ALL)
    for dataset in datasets:
        run_case("20/class, no augmentation", dataset, 20, base, seeds)
        run_case("20/class, standard augmentation", dataset, 20, base.with_(augment=AugmentConfig.standard()), seeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, digits only")
    parser.add_argument("--only", choices=("rates", "random", "augment"), help="one part only")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0 1 2)")
    parser.add_argument("--factors", type=float, nargs="+", default=list(FACTORS), help="fine-tune factors to try")
    parser.add_argument("--factor", type=float, default=TrainConfig().fine_tune_lr_factor,
                        help="fine-tune factor for the random-weights case (default: the config's)")
    args = parser.parse_args()
    datasets, seeds = (("digits",), [0]) if args.quick else (DATASETS, args.seeds or [0, 1, 2])
    start = time.perf_counter()
    if args.only in (None, "rates"):
        fine_tune_rates(datasets, seeds, args.factors)
    if args.only in (None, "random"):
        pretrained_vs_random(datasets, seeds, args.factor)
    if args.only in (None, "augment"):
        augmentation(datasets, seeds)
    emit({"total_seconds": round(time.perf_counter() - start, 1)})


if __name__ == "__main__":
    main()
