"""How deep a cut goes: the number of backbone blocks frozen from the input side, or ALL of them."""

from __future__ import annotations

from core.errors import TrainingError

ALL = -1  # frozen_blocks value meaning "every block frozen" (feature extraction)


def frozen_text(frozen_blocks: int) -> str:
    """How people and the CLI write a frozen depth: 'all' or the number of blocks."""
    return "all" if frozen_blocks == ALL else str(frozen_blocks)


def parse_frozen(text: str | int) -> int:
    """The inverse of frozen_text: 'all' or a whole number of blocks."""
    if text == "all" or text == ALL:
        return ALL
    try:
        return int(text)
    except ValueError:
        raise TrainingError(f"Frozen blocks must be 'all' or a whole number, got {text!r}.") from None


def frozen_choices(num_blocks: int) -> list[int]:
    """Depths worth comparing for a backbone of num_blocks blocks: feature extraction, then the last
    one, two, three blocks trainable, then a third and two thirds of the way down."""
    depths = [num_blocks - k for k in (1, 2, 3)] + [num_blocks * 2 // 3, num_blocks // 3]
    return [ALL] + sorted({d for d in depths if 0 <= d < num_blocks}, reverse=True)
