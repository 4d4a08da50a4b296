"""One description of a run, read by the pages, the CLI's runs table, compare, report and the
learning curve: what it trained on, how, and how well."""

from __future__ import annotations

from dataclasses import dataclass

from core.backbones.depth import frozen_text
from core.data.sampling import sample_text
from core.model.metrics import accuracy_text, wilson
from core.runs.store import Run, RunState


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    id: str
    state: RunState
    owner: str | None
    message: str
    dataset: str  # the dataset's name
    backbone: str
    frozen: str  # "all" or a number of blocks
    sample: str  # what was asked for per class: "20", "50%" (of each class) or "all"
    per_class: int | None  # images taken from the largest class
    images: int | None  # images sampled in all
    share: float | None  # of the dataset's usable images
    augmented: bool
    head: str
    epochs: int
    train_accuracy: float | None
    val_accuracy: float | None
    test_accuracy: float | None
    seconds: float | None
    trainable_share: float | None  # of all parameters, the head's included
    val_interval: tuple[float, float] | None = None  # 95% Wilson interval of the validation accuracy
    test_interval: tuple[float, float] | None = None
    sample_words: str = ""  # the sample in words (core.data.sampling.sample_text)

    @staticmethod
    def of(run: Run) -> RunSummary:
        c, d = run.config, run.dataset()
        m = run.metrics() if run.state == RunState.COMPLETED else {}
        taken = d.get("sample_per_class") or {}
        trainable, frozen = m.get("trainable_params", 0), m.get("frozen_params", 0)
        sample = str(c.per_class) if c.per_class else f"{c.fraction:.0%}" if c.fraction else "all"
        return RunSummary(
            id=run.id,
            state=run.state,
            owner=run.status.get("owner"),
            message="; ".join(run.damaged) or run.status.get("message", ""),
            dataset=d.get("name", c.dataset.replace("\\", "/").rsplit("/", 1)[-1]),
            backbone=c.backbone,
            frozen=frozen_text(c.frozen_blocks),
            sample=sample,
            per_class=max(taken.values()) if taken else c.per_class,
            images=d.get("sample_size"),
            share=d.get("sample_share"),
            augmented=c.augment.enabled,
            head=c.head,
            epochs=c.epochs,
            train_accuracy=m.get("train_accuracy"),
            val_accuracy=m.get("val_accuracy"),
            test_accuracy=m.get("test_accuracy"),
            seconds=m.get("seconds"),
            trainable_share=trainable / (trainable + frozen) if trainable + frozen else None,
            val_interval=_interval(m, d, "val"),
            test_interval=_interval(m, d, "test"),
            sample_words=sample_text(c.per_class, c.fraction),
        )

    @property
    def frozen_phrase(self) -> str:
        return "every block frozen" if self.frozen == "all" else f"{self.frozen} blocks frozen"

    def label(self) -> str:
        """One line for a select box."""
        val = f" - val {accuracy_text(self.val_accuracy, self.val_interval)}" if self.val_accuracy is not None else ""
        return f"{self.id} - {self.dataset}, {self.backbone}, {self.frozen} frozen, {self.head}{val} [{self.state}]"

    def series(self) -> str:
        """The learning-curve series a run belongs to: everything but its size."""
        augmented = "augmented" if self.augmented else "no augmentation"
        return f"{self.backbone}, {self.frozen} frozen, {augmented}, {self.head}"

    def row(self) -> dict:
        """The runs table (Results page, `python -m core runs`)."""
        def acc(value):
            return round(value, 3) if value is not None else None

        return {"run": self.id, "state": str(self.state), "data": self.dataset, "per class": self.sample,
                "frozen": self.frozen, "augment": "yes" if self.augmented else "no", "head": self.head,
                "train acc": acc(self.train_accuracy), "val acc": acc(self.val_accuracy),
                "val 95% CI": interval_text(self.val_interval), "test acc": acc(self.test_accuracy),
                "test 95% CI": interval_text(self.test_interval),
                "seconds": round(self.seconds, 1) if self.seconds else None,
                "epochs": self.epochs, "backbone": self.backbone}


def _interval(metrics: dict, dataset: dict, part: str) -> tuple[float, float] | None:
    """The stored interval, or (a run from before intervals) the Wilson interval for the split's size."""
    stored = metrics.get(f"{part}_accuracy_interval")
    if stored:
        return tuple(stored)
    accuracy, n = metrics.get(f"{part}_accuracy"), (dataset.get("split_sizes") or {}).get(part)
    return wilson(round(accuracy * n), n) if accuracy is not None and n else None


def interval_text(interval) -> str | None:
    return f"{interval[0]:.1%}-{interval[1]:.1%}" if interval else None


_STAGE_TEXT = {"starting": "Starting the worker", "decode": "Checking the images and drawing the sample",
               "features": "Computing features at the cut (once per image)",
               "evaluate": "Scoring the validation and test images", "fit": "Fitting the scikit-learn head",
               "saving": "Saving the run"}
_PHASE_TEXT = {"head": "Training the new head", "fine-tune": "Fine-tuning the unfrozen blocks with the head"}


def describe_progress(progress: dict) -> tuple[list[tuple[float, str]], str]:
    """A running run's progress (status.json's `progress`) as progress bars, (fraction, text) each,
    and a caption line (metrics and time left; may be empty)."""
    p, phase = progress, progress.get("phase", "starting")
    if phase in ("head", "fine-tune") and p.get("epochs"):
        batches = max(1, p["batches"])
        epoch_done = min(1.0, (p["epoch"] - 1 + p["batch"] / batches) / p["epochs"])
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in sorted((p.get("metrics") or {}).items()))
        eta = p.get("eta_seconds")
        caption = metrics + (f" - about {eta:.1f} s left in this phase" if eta is not None else "")
        return [(epoch_done, f"{_PHASE_TEXT[phase]}: epoch {p['epoch']} of {p['epochs']}"),
                (p["batch"] / batches, f"Batch {p['batch']} of {p['batches']}")], caption
    if phase == "convert" and p.get("batches"):
        return [(p["batch"] / p["batches"], f"Converting the backbone for this machine (its first use only): step "
                                            f"{p['batch'] + 1} of {p['batches']}")], ""
    if phase == "decode" and p.get("batches"):
        return [(p["batch"] / p["batches"], f"Decoding images: {p['batch']:,} of {p['batches']:,}")], ""
    if phase == "features" and p.get("batch") is not None and p.get("batches"):
        return [(p["batch"] / p["batches"], f"Decoding the images and running them through the frozen blocks: "
                                            f"{p['batch']:,} of {p['batches']:,}")], ""
    if phase == "augment" and p.get("batches"):
        return [(p["batch"] / p["batches"], f"Augmenting the training images and running the frozen blocks on "
                                            f"them: epoch {p['epoch']} of {p['epochs']}")], ""
    return [(0.0, _STAGE_TEXT.get(phase, phase))], ""


def where_trained(status: dict) -> str | None:
    """For a run trained on a Ray cluster: which node, and how many attempts it took; None for a local run."""
    if not status.get("cluster"):
        return None
    node = f"node {status['node'][:8]} of " if status.get("node") else ""
    tries = status.get("attempts", 1)
    retried = f", after {tries} attempts (a node was lost)" if tries > 1 else ""
    return f"Trained on {node}the Ray cluster at {status['cluster']}{retried}"
