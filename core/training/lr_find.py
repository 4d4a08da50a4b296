"""Learning-rate finder (Leslie Smith 2015; fastai's lr_find): a short run on the cached inputs with the
rate growing exponentially each batch; the loss (averaged over neighbouring batches) against the rate
shows where training is fast and where it diverges.

`head`: the dense head on the frozen part's vectors, from a fresh head. `fine-tune`: the head is first
trained as the run's head phase would train it, then the unfrozen blocks' rate grows while the head keeps
its own rate (the trainer's two-rate fine-tuning). Nothing is saved: the models are thrown away.

Each probe steps the same update the run would make: a run whose every block is frozen trains its head in
numpy (SoftmaxFit.step, core.training.numpy_fit), so its probe does too; a head that trains in TensorFlow,
and fine-tuning, step the run's own Keras model (its train_step). Only the rate changes from batch to batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from core.data.augment import AugmentConfig
from core.data.sampling import Split
from core.errors import TrainingError
from core.progress import Progress, staged
from core.training.config import TrainConfig
from core.training.plan import Consumes

STEPS = 100
RANGES = {"head": (1e-5, 10.0), "fine-tune": (1e-7, 1e-1)}
SMOOTHING = 0.9  # running average of the loss, debiased, for the stop rule
WINDOW = 9  # batches in the centred average drawn and read (no lag, unlike a running average)
DIVERGED = 4.0  # stop once the running average is this many times its minimum


ProbePhase = Literal["head", "fine-tune"]  # the phase whose learning rate is probed


@dataclass(frozen=True, kw_only=True)
class RateCurve:
    phase: ProbePhase
    rates: tuple[float, ...]
    losses: tuple[float, ...]  # smoothed by a centred moving average
    suggested: float  # a tenth of the rate at the lowest smoothed loss
    steepest: float  # where the smoothed loss falls fastest
    seconds: float

    def to_json(self) -> dict:
        return {"phase": self.phase, "suggested": self.suggested, "steepest": self.steepest,
                "rates": [float(f"{r:.4g}") for r in self.rates], "losses": [round(v, 5) for v in self.losses],
                "seconds": round(self.seconds, 2)}


def schedule(steps: int, start: float, end: float) -> np.ndarray:
    return start * (end / start) ** (np.arange(steps) / max(steps - 1, 1))


def suggest(rates: np.ndarray, losses: np.ndarray) -> tuple[float, float]:
    """(a tenth of the rate at the minimum, the rate of the steepest fall before the minimum); the first
    tenth of the steps is left out of the slopes, where the average has the fewest batches."""
    low, skip = int(np.argmin(losses)), len(losses) // 10
    if low - skip < 2:
        return float(rates[low] / 10), float(rates[low])
    slopes = np.gradient(losses[skip:low + 1], np.log(rates[skip:low + 1]))
    return float(rates[low] / 10), float(rates[skip + int(np.argmin(slopes))])


def centred_average(values: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Each value averaged with its neighbours, the window shrinking at the ends."""
    half = window // 2
    return np.array([values[max(0, i - half):i + half + 1].mean() for i in range(len(values))])


def ramp(step: Callable[[float, int], float], steps: int, start: float, end: float,
         progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """step(rate, i) -> the batch's loss, at growing rates; stops when the running average diverges.
    Returns the rates and the centred average of the losses."""
    rates, losses, average, best = [], [], 0.0, math.inf
    for i, rate in enumerate(schedule(steps, start, end)):
        loss = step(float(rate), i)
        if not math.isfinite(loss):
            break
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        running = average / (1 - SMOOTHING ** (i + 1))
        rates.append(rate)
        losses.append(loss)
        best = min(best, running)
        if progress:
            progress(i + 1, steps)
        if i > 5 and running > DIVERGED * best:
            break
    return np.array(rates), centred_average(np.array(losses))


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
    """Shuffled batches, reshuffled every pass, without end."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(y))
        for i in range(0, len(order), batch_size):
            index = order[i:i + batch_size]
            yield x[index], y[index]


def find_for_config(config: TrainConfig, phase: ProbePhase = "head",
                    progress: Progress | None = None) -> RateCurve:
    """The rate curve on the training images a run of this config would use."""
    from core.training.split import sample_split

    drawn = sample_split(config, staged(progress, "scan"))
    return find_learning_rate(config, drawn.split, phase, progress=progress)


def find_learning_rate(config: TrainConfig, split: Split, phase: ProbePhase = "head", steps: int = STEPS,
                       progress: Progress | None = None) -> RateCurve:
    """The rate curve of `phase` for this config and split (augmentation off: the inputs are cached)."""
    from core.training.trainer import set_up

    if phase not in RANGES:
        raise TrainingError(f"The learning-rate finder knows the phases head and fine-tune, not {phase!r}.")
    config = config.with_(augment=AugmentConfig(), cache_features=True, head="dense").validate()
    start_time = time.perf_counter()
    report = (lambda p: progress(p.phase, p.batch, p.batches)) if progress else None
    setup = set_up(config, split, progress=report)
    plan = setup.plan
    if plan.consumes not in (Consumes.VECTORS, Consumes.CUTS):
        raise TrainingError("The learning-rate finder needs the frozen part's outputs cached: choose a layered "
                            "backbone (an opaque hub layer cannot be cut) and a depth whose cut fits in memory.")
    if phase == "fine-tune" and not plan.fine_tunes:
        raise TrainingError("Every block is frozen, so there is no fine-tuning phase: choose fewer frozen blocks, "
                            "or find the head's rate.")
    probe = numpy_rate_probe if setup.models is None else rate_probe  # the loop the run itself would use
    step, (start, end) = probe(setup, phase), RANGES[phase]
    batches = _batches(_train_inputs(setup, phase), setup.inputs.labels["train"], config.batch_size,
                       config.seed)
    rates, losses = ramp(lambda rate, i: step(rate, *next(batches)), steps, start, end,
                         staged(progress, "lr"))
    if len(rates) < 3:
        raise TrainingError(f"The loss diverged within {len(rates)} batches even at {start:g}; the inputs may be "
                            f"broken (check the dataset).")
    suggested, steepest = suggest(rates, losses)
    return RateCurve(
        phase=phase,
        rates=tuple(rates),
        losses=tuple(losses),
        suggested=suggested,
        steepest=steepest,
        seconds=time.perf_counter() - start_time,
    )


def numpy_rate_probe(setup, phase: str):
    """step(rate, x, y) for a head that trains in numpy (every block frozen): SoftmaxFit's own update, with the
    run's dropout, class weights and seed, at `rate`."""
    from core.model.heads.dense import balanced_weights
    from core.model.heads.softmax_fit import SoftmaxFit, sample_weights

    config, labels = setup.ctx.config, setup.inputs.labels["train"]
    num_classes = len(setup.split.classes)
    fit = SoftmaxFit(setup.inputs.need("cuts")["train"].shape[1], num_classes,
                     learning_rate=config.learning_rate, dropout=config.dropout, seed=config.seed)
    # each class's weight as DenseHead.fit gives its images (the batches come without their indices)
    per_class = sample_weights(np.arange(num_classes), balanced_weights(labels) if config.class_weight else None)

    def step(rate: float, x: np.ndarray, y: np.ndarray) -> float:
        fit.learning_rate = rate
        return fit.step(x, y, per_class[y])[0]
    return step


def _train_inputs(setup, phase: str) -> np.ndarray:
    """The head's vectors, or the cut tensors fine-tuning starts from."""
    from core.backbones.forward import run_batches

    cuts = setup.inputs.need("cuts")["train"]
    if phase == "fine-tune" or setup.plan.consumes == Consumes.VECTORS:
        return cuts
    return run_batches(setup.models.vectors, cuts)


def rate_probe(setup, phase: str):
    """step(rate, x, y) -> the batch's loss after one update at `rate`: the head alone on vectors, or, after
    the head phase the run would train first, the unfrozen blocks at `rate` with the head at its own rate.
    `setup`: core.training.trainer.set_up's, for a dense head."""
    from core.tf import tf, tf_keras
    from core.training.dense import assign_rates, fit_phase

    models, plan, config = setup.models, setup.plan, setup.ctx.config
    if phase == "head":
        model = models.head_only
        model.compile(optimizer=tf_keras.optimizers.Adam(config.learning_rate),
                      loss="sparse_categorical_crossentropy")
    else:
        if plan.phases[0].name == "head":
            fit_phase(setup.ctx, plan, plan.phases[0], models, setup.inputs, 1)
        model, fine = models.trainable, plan.phases[-1]
        for block in models.trainable_blocks:
            block.trainable = True
        assign_rates(model, fine, models)
        model.compile(optimizer=tf_keras.optimizers.Adam(fine.learning_rate), loss="sparse_categorical_crossentropy")
    train_step = tf.function(model.train_step)

    def step(rate: float, x: np.ndarray, y: np.ndarray) -> float:
        model.optimizer.learning_rate.assign(rate)
        model.reset_metrics()
        return float(train_step((tf.constant(x), tf.constant(y)))["loss"])
    return step
