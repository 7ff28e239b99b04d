"""Progressive learning (EfficientNetV2, Tan & Le 2021, §4): a training schedule in stages.

Training starts on small images with weak regularisation; image size and regularisation
(dropout, RandAugment magnitude, mixup alpha) grow together, linearly from stage to stage
(the paper's Algorithm 1). `train(..., progressive=…)` runs one `fit` per stage on the same
model (built with a free spatial size), so the optimizer, its schedule and the EMA run on.

Pure Python: this module imports no TensorFlow.

Example:
    >>> schedule = Progressive.preset("v2-s")
    >>> [s.size for s in schedule.plan(epochs=8, resolution=384, dropout=0.2)]
    [128, 185, 243, 300]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from keras_effnet.checks import check_int, is_int, is_real
from keras_effnet.errors import InvalidArgument, InvalidType
from keras_effnet.schema import MIN_RESOLUTION

START_FRACTION = 128 / 300  # V2-S's first size over its last: a derived schedule's start


@dataclass(frozen=True)
class Stage:
    """One stage: epochs [first_epoch, end_epoch), its image size and regularisation."""

    index: int
    first_epoch: int
    end_epoch: int
    size: int
    dropout: float
    randaugment: float  # magnitude 0..30 (0: off)
    mixup: float  # alpha (0: off)

    @property
    def epochs(self) -> int:
        return self.end_epoch - self.first_epoch

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "epochs": self.epochs}


@dataclass(frozen=True)
class Progressive:
    """The schedule: `stages` stages from `start_size` to `end_size` pixels, the regularisation
    growing from the first to the second value of each pair.

    None means derived, the same way for every model: `end_size` is the training resolution,
    `start_size` 128/300 of it (V2-S's ratio) rounded to a multiple of 8 and at least 32,
    dropout from 0.1 to the model's own rate; RandAugment 5 → 15 and no mixup are V2-S's.
    `randaugment_ops` is the number of RandAugment operations per image (the paper's 2).
    """

    stages: int = 4
    start_size: int | None = None
    end_size: int | None = None
    dropout: tuple[float, float] | None = None
    randaugment: tuple[float, float] = (5.0, 15.0)
    mixup: tuple[float, float] = (0.0, 0.0)
    randaugment_ops: int = 2
    name: str = "derived"

    def __post_init__(self) -> None:
        check_int("stages", self.stages, 1, "progressive ")
        for label in ("start_size", "end_size"):
            value = getattr(self, label)
            if value is not None and (not is_int(value) or value < MIN_RESOLUTION):
                raise InvalidArgument(f"progressive {label}={value!r}; accepted: None or an "
                                      f"integer >= {MIN_RESOLUTION}")
        if None not in (self.start_size, self.end_size) and self.start_size > self.end_size:
            raise InvalidArgument(f"progressive start_size={self.start_size} is above its "
                                  f"end_size={self.end_size}; the image size grows")
        for label, high in (("dropout", 1.0), ("randaugment", 30.0), ("mixup", 1.0)):
            pair = getattr(self, label)
            if pair is None and label == "dropout":
                continue
            ok = (isinstance(pair, (tuple, list)) and len(pair) == 2
                  and all(is_real(v) and 0 <= v <= high for v in pair))
            if not ok or (label == "dropout" and pair[1] >= 1):
                raise InvalidArgument(f"progressive {label}={pair!r}; accepted: (start, end) in "
                                      f"[0, {high:g}{')' if label == 'dropout' else ']'}")
            object.__setattr__(self, label, (float(pair[0]), float(pair[1])))
        check_int("randaugment_ops", self.randaugment_ops, 1, "progressive ")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "Progressive":
        """The V2 paper's settings (its Table 6: "v2-s", "v2-m", "v2-l"), or "derived"."""
        if name not in PRESETS:
            raise InvalidArgument(f"progressive preset {name!r}; accepted: "
                                  f"{', '.join(PRESETS)}")
        return dataclasses.replace(PRESETS[name], **overrides)

    def plan(self, epochs: int, resolution: int, dropout: float) -> list[Stage]:
        """The stages of a run of `epochs` epochs whose saved model takes `resolution` px and
        whose own dropout rate is `dropout`; the epochs split as evenly as they go (earlier
        stages take the remainder). Refused when there are more stages than epochs."""
        n = self.stages
        if not is_int(epochs) or epochs < n:
            raise InvalidArgument(f"progressive learning in {n} stages needs at least {n} "
                                  f"epochs; got epochs={epochs!r} (lower --progressive_stages)")
        end = self.end_size or resolution
        start = self.start_size or max(MIN_RESOLUTION, int(round(end * START_FRACTION / 8)) * 8)
        if start > end:
            raise InvalidArgument(f"progressive start size {start} is above the final size "
                                  f"{end}; the image size grows")
        drop = self.dropout or (min(0.1, dropout), dropout)
        found, first = [], 0
        for i in range(n):
            t = i / (n - 1) if n > 1 else 1.0
            length = epochs // n + (1 if i < epochs % n else 0)

            def grown(pair: tuple[float, float]) -> float:
                return round(pair[0] + (pair[1] - pair[0]) * t, 6)

            found.append(Stage(i, first, first + length, int(round(start + (end - start) * t)),
                               grown(drop), grown(self.randaugment), grown(self.mixup)))
            first += length
        return found

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# The V2 paper's Table 6 (docs/reference.md, "Progressive learning (EfficientNetV2, Table 6)"):
# S, M, L.
PRESETS = {
    "derived": Progressive(),
    "v2-s": Progressive(start_size=128, end_size=300, dropout=(0.1, 0.3), randaugment=(5, 15),
                        mixup=(0, 0), name="v2-s"),
    "v2-m": Progressive(start_size=128, end_size=380, dropout=(0.1, 0.4), randaugment=(5, 20),
                        mixup=(0, 0.2), name="v2-m"),
    "v2-l": Progressive(start_size=128, end_size=380, dropout=(0.1, 0.5), randaugment=(5, 25),
                        mixup=(0, 0.4), name="v2-l"),
}


def as_progressive(value: Any) -> Progressive | None:
    """`train`'s `progressive=` argument: None / False (off), True (derived), a preset name,
    or a `Progressive`."""
    if value is None or value is False:
        return None
    if value is True:
        return Progressive()
    if isinstance(value, str):
        return Progressive.preset(value)
    if isinstance(value, Progressive):
        return value
    raise InvalidType(f"progressive={value!r}; accepted: None, True, a preset name "
                      f"({', '.join(PRESETS)}) or a Progressive")
