"""The command line's option groups, each defined once and shared by every command that takes it, and the
TrainConfig they ask for. Every default comes from TrainConfig."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from core.backbones.depth import frozen_text, parse_frozen
from core.backbones.registry import DEFAULT_BACKBONE, resolve_name
from core.training.config import HEADS, TrainConfig

if TYPE_CHECKING:
    from core.runs.store import RunStore

D = TrainConfig()


def _group() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def runs_options() -> argparse.ArgumentParser:
    """Where runs are kept: every command that reads or writes runs."""
    p = _group()
    p.add_argument("--runs-dir", default=None, help="the run store (default: STUDIO_RUNS_DIR or STUDIO_HOME/runs)")
    return p


def run_store(args: argparse.Namespace) -> RunStore:
    """The run store a command works on: --runs-dir, else STUDIO_RUNS_DIR or STUDIO_HOME/runs."""
    from core.runs.store import RunStore

    root = getattr(args, "runs_dir", None)
    return RunStore(root=Path(root).expanduser()) if root else RunStore.default()


def data_options() -> argparse.ArgumentParser:
    """Which images, through which backbone, at which size."""
    p = _group()
    p.add_argument("--data", default=D.dataset, help="demo name (digits, faces), folder of class folders, or .zip")
    p.add_argument("--model", default=D.backbone, type=resolve_name,
                   help=f"a backbone from `models` (default {DEFAULT_BACKBONE})")
    p.add_argument("--image-size", type=int, default=D.image_size)
    return p


def seed_options() -> argparse.ArgumentParser:
    p = _group()
    p.add_argument("--seed", type=int, default=D.seed, help="the sample, the split and the head's start")
    return p


def sample_options() -> argparse.ArgumentParser:
    """How many images of each class."""
    p = _group()
    p.add_argument("--per-class", type=int, default=D.per_class, help="images sampled per class")
    p.add_argument("--fraction", type=float, default=D.fraction, help="sample this fraction of every class instead")
    return p


def depth_options() -> argparse.ArgumentParser:
    p = _group()
    p.add_argument("--frozen-blocks", default=frozen_text(D.frozen_blocks),
                   help="number of blocks frozen from the input side, or 'all'")
    return p


def head_options() -> argparse.ArgumentParser:
    """What trains on top of the cut, and on what."""
    p = _group()
    p.add_argument("--augment", action="store_true")
    p.add_argument("--head", choices=HEADS, default=D.head)
    p.add_argument("--class-weight", action="store_true", help="weight the loss so every class counts the same")
    return p


def fit_options() -> argparse.ArgumentParser:
    """The split and the fitting schedule."""
    p = _group()
    p.add_argument("--val", type=float, default=D.val_fraction, help="validation share of each class")
    p.add_argument("--test", type=float, default=D.test_fraction, help="test share of each class")
    p.add_argument("--epochs", type=int, default=D.epochs)
    p.add_argument("--batch-size", type=int, default=D.batch_size)
    p.add_argument("--lr", type=float, default=D.learning_rate, help="the head's learning rate")
    p.add_argument("--fine-tune-factor", type=float, default=D.fine_tune_lr_factor,
                   help="the unfrozen blocks fine-tune at lr x this factor; the head keeps lr")
    p.add_argument("--one-phase", action="store_true", help="skip the head-only first phase")
    p.add_argument("--patience", type=int, default=D.early_stopping, help="early stopping patience (epochs), 0 = off")
    p.add_argument("--no-cache", action="store_true", help="do not cache features at the cut")
    return p


# What a command that builds a TrainConfig without some groups uses in their place (set as parser defaults).
SAMPLE_DEFAULTS = {"per_class": D.per_class, "fraction": D.fraction}
DEPTH_DEFAULTS = {"frozen_blocks": frozen_text(D.frozen_blocks)}
HEAD_DEFAULTS = {"augment": False, "head": D.head, "class_weight": False}


def data_spec(text: str) -> str:
    """A demo name as it is, a folder or zip as an absolute path (the key runs and analyses share)."""
    from core.data.sources import DEMOS, check_data_spec

    check_data_spec(text)
    return text if text in DEMOS else str(Path(text).expanduser().resolve())


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the options ask for."""
    from core.data.augment import AugmentConfig

    return TrainConfig(dataset=data_spec(args.data), backbone=args.model,
                       frozen_blocks=parse_frozen(args.frozen_blocks),
                       per_class=None if args.fraction else args.per_class, fraction=args.fraction,
                       val_fraction=args.val, test_fraction=args.test,
                       augment=AugmentConfig.standard() if args.augment else AugmentConfig(), head=args.head,
                       epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                       fine_tune_lr_factor=args.fine_tune_factor, two_phase=not args.one_phase,
                       early_stopping=args.patience, seed=args.seed, image_size=args.image_size,
                       cache_features=not args.no_cache, class_weight=args.class_weight)


def model_list(texts: list[str] | None) -> tuple[str, ...]:
    """--models as typed (commas or spaces, aliases like random_init) -> registry names."""
    return tuple(resolve_name(n) for text in texts or () for n in text.split(",") if n.strip())
