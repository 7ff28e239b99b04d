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
import math
from dataclasses import dataclass
from typing import Any

from keras_effnet.checks import check_int, is_int, is_real
from keras_effnet.errors import InvalidArgument, InvalidType
from keras_effnet.schema import MIN_RESOLUTION

START_FRACTION = 128 / 300  # V2-S's first size over its last: a derived schedule's start
# The smallest first stage of a derived schedule. Measured (lite0 from scratch on the real
# digits, 8 epochs to 64 px in 4 stages, no RandAugment; fixed size 0.972): from 32 px (a 1x1
# last feature map) 0.883, from 48 px 0.956, within the fixed-size runs' spread over seeds
# (0.956-0.983, benchmarks/results/progressive.md).
MIN_START = 48
# The derived schedule's regularisation (docs/training.md, "Progressive learning"): Table 6's
# ends against the model's parameter count (profiled with a 1000-class head, as Table 6's
# models) — V2-S, V2-M, V2-L: RandAugment 15, 20, 25, mixup 0, 0.2, 0.4; interpolated and
# extrapolated in log(parameters), never below 0 …
TABLE6_ENDS = ((21_612_360, 15.0, 0.0), (54_431_388, 20.0, 0.2), (119_027_848, 25.0, 0.4))
# … times the stage's size on V2-S's line (128 px: 5, 300 px: 15; zero at 42 px, full from
# 300 px) …
SIZE_LINE = (128, 5.0, 300, 15.0)
# … times the training the run does, as images seen (epochs x training images) on a log scale
# from REGULARISE_FROM (none below: every run measured here, up to 24 000 images seen, lost
# accuracy to any RandAugment) to Table 6's own, 350 epochs of ImageNet's 1 281 167 images.
REGULARISE_FROM = 100_000
PAPER_IMAGES_SEEN = 350 * 1_281_167
# What benchmarks/results/progressive.md measured on a 2-core CPU at equal epochs.
CPU_FINDING = ("measured less accurate than fixed-size training at equal epochs (lite0 on the "
               "real digits from scratch, 8 epochs to 64 px: 0.939 against 0.975) and slower "
               "(1.4x: a smaller image is not proportionally cheaper on a CPU, and each stage "
               "traces its steps again)")


@dataclass(frozen=True)
class Stage:
    """One stage: epochs [first_epoch, end_epoch), its image size and regularisation, and
    (staged fine-tuning, `keras_effnet.fine_tuning`) the first block that trains (blocks below
    it frozen, batch normalization in inference mode; None: everything trains) and the share
    of the run's learning rate it trains at."""

    index: int
    first_epoch: int
    end_epoch: int
    size: int
    dropout: float
    randaugment: float  # magnitude 0..30 (0: off)
    mixup: float  # alpha (0: off)
    train_from: int | None = None
    rate: float = 1.0

    @property
    def epochs(self) -> int:
        return self.end_epoch - self.first_epoch

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "epochs": self.epochs}


@dataclass(frozen=True)
class Progressive:
    """The schedule: `stages` stages from `start_size` to `end_size` pixels, the regularisation
    growing from the first to the second value of each pair.

    None means derived from the run (`plan`'s arguments): `end_size` is the training
    resolution, `start_size` 128/300 of it (V2-S's ratio) rounded to a multiple of 8 and no
    smaller than 48 px (`MIN_START`: from 32 px a model learns measurably less), dropout from 0.1
    to the model's own rate; RandAugment and mixup from Table 6 by the model's size, the
    stage's image size and the images the run sees (`derived_regularisation`).
    `randaugment_ops` is the number of RandAugment operations per image (the paper's 2).
    """

    stages: int = 4
    start_size: int | None = None
    end_size: int | None = None
    dropout: tuple[float, float] | None = None
    randaugment: tuple[float, float] | None = None
    mixup: tuple[float, float] | None = None
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
            if pair is None:
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

    def plan(self, epochs: int, resolution: int, dropout: float, params: int | None = None,
             images: int | None = None) -> list[Stage]:
        """The stages of a run of `epochs` epochs whose saved model takes `resolution` px and
        whose own dropout rate is `dropout`; the epochs split as evenly as they go (earlier
        stages take the remainder). Refused when there are more stages than epochs. A derived
        schedule's regularisation follows the model's parameter count `params` and the
        training images an epoch sees, `images` (None: Table 6's, V2-S on ImageNet)."""
        n = self.stages
        if not is_int(epochs) or epochs < n:
            raise InvalidArgument(f"progressive learning in {n} stages needs at least {n} "
                                  f"epochs; got epochs={epochs!r} (lower --progressive_stages)")
        end = self.end_size or resolution
        start = self.start_size or min(end, max(MIN_START,
                                                int(round(end * START_FRACTION / 8)) * 8))
        if start > end:
            raise InvalidArgument(f"progressive start size {start} is above the final size "
                                  f"{end}; the image size grows")
        drop = self.dropout or (min(0.1, dropout), dropout)
        found, first = [], 0
        for i in range(n):
            t = i / (n - 1) if n > 1 else 1.0
            length = epochs // n + (1 if i < epochs % n else 0)
            size = int(round(start + (end - start) * t))

            def grown(pair: tuple[float, float] | None, which: int) -> float:
                if pair is None:
                    return derived_regularisation(size, params, None if images is None
                                                  else images * epochs)[which]
                return round(pair[0] + (pair[1] - pair[0]) * t, 6)

            found.append(Stage(i, first, first + length, size, grown(drop, -1),
                               grown(self.randaugment, 0), grown(self.mixup, 1)))
            first += length
        return found

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def derived_regularisation(size: int, params: int | None = None,
                           images_seen: int | None = None) -> tuple[float, float]:
    """(RandAugment magnitude, mixup alpha) of a derived schedule's stage at `size` px, for a
    model of `params` parameters trained on `images_seen` images in all (None: V2-S's, and
    Table 6's ImageNet run). The product of three factors: Table 6's end value for the model's
    size, V2-S's size line (weak regularisation on small images: the paper's "adaptive
    regularization"), and the run's training on a log scale (a short run on little data
    underfits; regularisation only slows it)."""
    x = math.log(params or TABLE6_ENDS[0][0])
    (p0, m0, a0), (p1, m1, a1) = (TABLE6_ENDS[:2] if x <= math.log(TABLE6_ENDS[1][0])
                                  else TABLE6_ENDS[1:])
    t = (x - math.log(p0)) / (math.log(p1) - math.log(p0))
    magnitude, alpha = max(0.0, m0 + (m1 - m0) * t), max(0.0, a0 + (a1 - a0) * t)
    small, low, large, high = SIZE_LINE
    zero = small - low * (large - small) / (high - low)
    by_size = min(1.0, max(0.0, (size - zero) / (large - zero)))
    seen = PAPER_IMAGES_SEEN if images_seen is None else images_seen
    by_data = min(1.0, max(0.0, math.log(max(seen, 1) / REGULARISE_FROM)
                           / math.log(PAPER_IMAGES_SEEN / REGULARISE_FROM)))
    return (round(min(30.0, magnitude * by_size * by_data), 3),
            round(min(1.0, alpha * by_size * by_data), 3))


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


def concern(stages: list[Stage], accelerated: bool) -> str | None:
    """One line, said before training, when the measurements say this schedule cannot help
    (docs/efficientnetv2.md, "Does it pay off here?"); None otherwise."""
    sizes = sorted({s.size for s in stages})
    if len(stages) > 1 and len(sizes) == 1:
        return (f"progressive learning: every stage trains at {sizes[0]} px (a derived "
                f"schedule starts no smaller than {MIN_START} px, below which the model "
                "learns measurably less), so the stages differ in regularisation only")
    if not accelerated:
        return ("progressive learning on a CPU: " + CPU_FINDING + "; it pays on GPUs and TPUs "
                "over long runs (the paper's stages are ~87 epochs each); "
                "benchmarks/results/progressive.md")
    return None


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
