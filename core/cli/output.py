"""What the command line prints: tables, and progress lines while a run or an analysis goes on."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.runs.store import RunStore


def table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def epoch_line(row: dict, epochs: int) -> str:
    values = " ".join(f"{k} {row[k]:.3f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy")
                      if row.get(k) is not None)
    return f"{row['phase']} epoch {row['epoch']}/{epochs} {values}".rstrip()


class TrainPrinter:
    """Prints a training run as it goes: the dataset's validation summary once the worker has
    written it, each new stage, and each finished epoch."""

    def __init__(self, store: RunStore, run_id: str, epochs: int):
        self.store, self.run_id, self.epochs = store, run_id, epochs
        self.phase, self.shown_epochs, self.shown_data = None, 0, False

    def __call__(self, status: dict) -> None:
        from core.data.dataset import validation_lines

        run = self.store.load(self.run_id, verify=False)
        if not self.shown_data and (run.dir / "dataset.json").is_file():
            print("\n".join(validation_lines(run.dataset())), flush=True)
            self.shown_data = True
        phase = (status.get("progress") or {}).get("phase")
        if phase and phase != self.phase and phase not in ("head", "fine-tune"):
            print(phase, flush=True)
            self.phase = phase
        history = run.history()  # every finished epoch, from history.csv
        for row in history[self.shown_epochs:]:
            print(epoch_line(row, self.epochs), flush=True)
        self.shown_epochs = len(history)


class StagePrinter:
    """progress(stage, done, total) as one line per stage and a line at most every second."""

    def __init__(self):
        self.stage, self.last = None, 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        import time

        now = time.monotonic()
        if stage != self.stage or done == total or now - self.last >= 1.0:
            print(f"{stage} {done}/{total}", flush=True)
            self.stage, self.last = stage, now
