"""Staged fine-tuning: the way the Keras transfer-learning guide fine-tunes a pretrained model.

The new classifier trains alone first, on a frozen backbone (a fresh head's large early
gradients would otherwise reach, and wreck, the pretrained features); then the blocks are
unfrozen from the top in steps (the top blocks hold the most task-specific features, the
stem and first blocks the most general ones), and batch normalization stays in inference mode
throughout, its ImageNet statistics kept (a small batch of new images would replace them
with noisy ones). `train(..., fine_tuning="staged")` applies it; the optimizer, its schedule
and the EMA run on across the steps, each a `fit` of its own, as progressive learning's
stages (`keras_effnet.progressive`): both split a run into `Stage`s, and combine.

Pure Python: this module imports no TensorFlow.

Example:
    >>> [(p.first_epoch, p.end_epoch, p.train_from, p.rate) for p in FineTuning().plan(8, 16)]
    [(0, 2, 16, 1.0), (2, 5, 8, 0.3), (5, 8, 0, 0.3)]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from keras_effnet.checks import check_int, is_real
from keras_effnet.errors import InvalidArgument, InvalidType
from keras_effnet.progressive import Stage

MODES = ("full", "staged")


@dataclass(frozen=True)
class Phase:
    """Epochs [first_epoch, end_epoch) train the blocks from index `train_from` up (the top
    convolution with the last block) and the classifier, at `rate` of the run's learning rate;
    `train_from` = the block count: the classifier alone."""

    first_epoch: int
    end_epoch: int
    train_from: int
    rate: float = 1.0


@dataclass(frozen=True)
class FineTuning:
    """`head_share` of the epochs (at least one) train the new classifier alone, the rest
    unfreeze the blocks from the top in `steps` equal steps (2: the top half, then all) at
    `backbone_rate` of the run's learning rate: with batch normalization in inference mode
    (throughout), nothing renormalises the activations a large step moves. Measured (ImageNet
    lite0 on the real digits, 8 epochs at 64 px): the full rate fell to chance at the first
    unfrozen step; 0.1 of it ended at 0.897, 0.3 at 0.956 (full fine-tuning: 0.978). Fewer
    epochs than
    1 + `steps` take fewer steps (one epoch: the classifier alone, a linear probe)."""

    head_share: float = 0.25
    steps: int = 2
    backbone_rate: float = 0.3

    def __post_init__(self) -> None:
        if not is_real(self.head_share) or not 0 < self.head_share < 1:
            raise InvalidArgument(f"fine-tuning head_share={self.head_share!r}; accepted: a "
                                  "share of the epochs in (0, 1)")
        check_int("steps", self.steps, 1, "fine-tuning ")
        if not is_real(self.backbone_rate) or not 0 < self.backbone_rate <= 1:
            raise InvalidArgument(f"fine-tuning backbone_rate={self.backbone_rate!r}; "
                                  "accepted: a share of the learning rate in (0, 1]")

    def plan(self, epochs: int, blocks: int) -> list[Phase]:
        """The phases of an `epochs`-epoch run of a model of `blocks` blocks."""
        head = min(epochs, max(1, round(epochs * self.head_share)))
        steps = min(self.steps, epochs - head)
        found = [Phase(0, head, blocks)]
        rest, first = epochs - head, head
        for i in range(steps):
            length = rest // steps + (1 if i < rest % steps else 0)
            found.append(Phase(first, first + length, blocks * (steps - 1 - i) // steps,
                               self.backbone_rate))
            first += length
        return found

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def cut(stages: list[Stage], phases: list[Phase]) -> list[Stage]:
    """`stages` (progressive learning's, or one stage for a fixed-size run) cut where a phase
    begins, each piece training what its phase trains at its rate (`Stage.train_from`,
    `Stage.rate`)."""
    cuts = sorted({s.first_epoch for s in stages} | {p.first_epoch for p in phases})
    ends = cuts[1:] + [stages[-1].end_epoch]
    found = []
    for i, (first, end) in enumerate(zip(cuts, ends)):
        phase = next(p for p in phases if p.first_epoch <= first < p.end_epoch)
        found.append(dataclasses.replace(
            next(s for s in stages if s.first_epoch <= first < s.end_epoch), index=i,
            first_epoch=first, end_epoch=end, train_from=phase.train_from, rate=phase.rate))
    return found


def as_fine_tuning(value: Any) -> str | FineTuning:
    """`train`'s `fine_tuning=` argument: "full", "staged" or a `FineTuning`."""
    if isinstance(value, FineTuning) or value in MODES:
        return value
    if isinstance(value, str):
        raise InvalidArgument(f"fine_tuning={value!r}; accepted: {', '.join(MODES)} or a "
                              "FineTuning")
    raise InvalidType(f"fine_tuning={value!r}; accepted: {', '.join(MODES)} or a FineTuning")
