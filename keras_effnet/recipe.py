"""The training recipe: optimisation and regularisation settings, as one frozen value.

Pure Python. `Recipe.paper()` is the reference ImageNet recipe, `Recipe.short()` the defaults
for small data and few epochs; `keras_effnet.train.train` applies one (the optimizer and
schedule come from `keras_effnet.optim`; dropout, drop path and BN momentum are passed to
`build`, which sets them as it builds: `scaling.with_training`).

Example:
    >>> Recipe.named("short", learning_rate=0.01).optimizer
    'adam'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from keras_effnet.data import Augment
from keras_effnet.errors import InvalidArgument
from keras_effnet.checks import renamed_argument


FINE_TUNING_SHARE = 0.25  # of a recipe's learning rate, from pretrained weights


@dataclass(frozen=True)
class Recipe:
    """Optimisation and regularisation settings; every field can be overridden.

    `Recipe.paper()` is the reference ImageNet recipe (docs/reference.md, "Training recipe");
    `Recipe.short()` the defaults for small data and few epochs (BUILD_NOTES.md explains each
    change).
    `learning_rate` is per 256 images and scaled linearly by the global batch.
    """

    name: str = "custom"
    optimizer: str = "rmsprop"  # rmsprop | adam | sgd
    learning_rate: float = 0.016
    warmup_epochs: float = 5.0
    schedule: str = "exponential"  # exponential (×decay_rate every decay_epochs) | cosine
    decay_rate: float = 0.97
    decay_epochs: float = 2.4
    # Not on batch norm. RMSProp/SGD: L2 in the loss, weight_decay·Σw²/2 (the reference);
    # Adam: decoupled (AdamW), since an L2 gradient is rescaled away by Adam's normaliser.
    weight_decay: float = 1e-5
    label_smoothing: float = 0.1
    ema_decay: float | None = 0.9999
    # None: the model's own, as its paper trained it (0.99; EfficientNetV2's bases 0.9)
    bn_momentum: float | None = None
    dropout_rate: float | None = None  # None: the model's own (0.2 for B0 … 0.5 for B7)
    drop_path_rate: float = 0.2
    # the deprecated name of drop_path_rate (accepted for one release, not stored)
    drop_connect_rate: dataclasses.InitVar[float | None] = None
    crop_area_min: float = 0.08
    randaugment: tuple[int, int] | None = None
    zero_init: bool = False  # residual branches' last BN γ and the classifier start at zero
    rmsprop_rho: float = 0.9
    momentum: float = 0.9
    epsilon: float = 1e-3

    def __post_init__(self, drop_connect_rate: float | None = None) -> None:
        object.__setattr__(self, "drop_path_rate", renamed_argument(
            "drop_connect_rate", drop_connect_rate, "drop_path_rate", self.drop_path_rate,
            Recipe.drop_path_rate))
        if self.optimizer not in ("rmsprop", "adam", "sgd"):
            raise InvalidArgument(f"optimizer={self.optimizer!r}; accepted: rmsprop, adam, sgd")
        if self.schedule not in ("exponential", "cosine"):
            raise InvalidArgument(f"schedule={self.schedule!r}; accepted: exponential, cosine")
        if not self.learning_rate > 0 or self.warmup_epochs < 0 or self.weight_decay < 0:
            raise InvalidArgument(f"learning_rate={self.learning_rate}, warmup_epochs="
                                  f"{self.warmup_epochs}, weight_decay={self.weight_decay}: "
                                  "need learning_rate > 0 and the others >= 0")
        if not 0 <= self.label_smoothing < 1:
            raise InvalidArgument(f"label_smoothing={self.label_smoothing!r}; accepted: [0, 1)")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise InvalidArgument(f"ema_decay={self.ema_decay!r}; accepted: None or (0, 1)")
        if self.bn_momentum is not None and not 0 < self.bn_momentum < 1:
            raise InvalidArgument(f"bn_momentum={self.bn_momentum!r}; accepted: None or (0, 1)")
        if isinstance(self.randaugment, list):
            object.__setattr__(self, "randaugment", tuple(self.randaugment))
        Augment(self.crop_area_min, self.randaugment)  # validates those two

    @classmethod
    def paper(cls) -> "Recipe":
        return cls(name="paper")

    @classmethod
    def short(cls) -> "Recipe":
        return cls(name="short", optimizer="adam", learning_rate=0.024, warmup_epochs=1.0,
                   schedule="cosine", weight_decay=0.0, label_smoothing=0.1, ema_decay=None,
                   bn_momentum=0.9, dropout_rate=0.1, drop_path_rate=0.0,
                   crop_area_min=0.6, zero_init=True)

    def fine_tuning(self) -> "Recipe":
        """This recipe for a model that starts from pretrained weights: a quarter of its
        learning rate (0.006 per 256 images for the short recipe: what fine-tunes the
        ImageNet Lite0 best in a few epochs, docs/training.md)."""
        return dataclasses.replace(self, learning_rate=self.learning_rate * FINE_TUNING_SHARE)

    @classmethod
    def named(cls, name: str, **overrides: Any) -> "Recipe":
        if name not in ("paper", "short"):
            raise InvalidArgument(f"recipe={name!r}; accepted: 'paper' or 'short'")
        return dataclasses.replace(getattr(cls, name)(), **overrides)
