"""Optimizers, the learning-rate schedule and the weight average a `Recipe` asks for.

`make_optimizer(recipe, ...)` returns RMSProp / SGD / AdamW on a linear warm-up followed by
the reference's staircase exponential decay or a cosine, with the reference's EMA of the
weights when the recipe has one. The schedule and optimizer classes are registered Keras
serializables, so a compiled `.keras` file reloads once this module is imported.

Example:
    >>> optimizer = make_optimizer(Recipe.short(), 64, steps_per_epoch=25, epochs=20, model=m)
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

from keras_effnet.keras_private import ReferenceEMA
from keras_effnet.recipe import Recipe


@keras.saving.register_keras_serializable(package="keras_effnet")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak`, then staircase exponential decay (the reference) or cosine,
    times `share` (a constant of the traced step: staged fine-tuning's steps set it)."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int, kind: str,
                 decay_rate: float = 0.97, decay_steps: int = 1) -> None:
        self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, total_steps
        self.kind, self.decay_rate, self.decay_steps = kind, decay_rate, max(1, decay_steps)
        self.share = 1.0

    def __call__(self, step: Any) -> Any:
        step = tf.cast(step, tf.float32)
        warmup = float(max(1, self.warmup_steps))
        warm = self.peak * (step + 1) / warmup
        if self.kind == "exponential":
            decayed = self.peak * self.decay_rate ** tf.floor(step / self.decay_steps)
        else:
            span = float(max(1, self.total_steps - self.warmup_steps))
            progress = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
            decayed = self.peak * 0.5 * (1 + tf.cos(math.pi * progress))
        return self.share * tf.where(step < self.warmup_steps, warm, decayed)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps, "kind": self.kind,
                "decay_rate": self.decay_rate, "decay_steps": self.decay_steps}


def apply_weight_decay(model: keras.Model, weight_decay: float) -> None:
    """L2 penalty weight_decay·Σw²/2 on every trainable weight except batch norm's."""
    if weight_decay <= 0:
        return
    penalty = keras.regularizers.L2(weight_decay / 2)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            continue
        for variable in layer.trainable_weights:
            variable.regularizer = penalty


def _with_reference_ema(base: type) -> type:
    return keras.saving.register_keras_serializable(package="keras_effnet")(
        type(base.__name__, (ReferenceEMA, base), {"__doc__": base.__doc__}))


RMSprop, SGD, AdamW = map(_with_reference_ema, (keras.optimizers.RMSprop, keras.optimizers.SGD,
                                                keras.optimizers.AdamW))


def make_optimizer(recipe: Recipe, global_batch: int, steps_per_epoch: int, epochs: int,
                   model: keras.Model) -> keras.optimizers.Optimizer:
    """The recipe's optimizer and schedule; sets up its weight decay on `model`."""
    peak = recipe.learning_rate * global_batch / 256
    schedule = WarmupSchedule(peak, int(recipe.warmup_epochs * steps_per_epoch),
                              epochs * steps_per_epoch, recipe.schedule, recipe.decay_rate,
                              int(recipe.decay_epochs * steps_per_epoch))
    ema = {"use_ema": recipe.ema_decay is not None, "ema_momentum": recipe.ema_decay or 0.99}
    if recipe.optimizer == "adam":
        optimizer = AdamW(schedule, weight_decay=recipe.weight_decay, **ema)
        optimizer.exclude_from_weight_decay(var_list=[
            v for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
            for v in layer.trainable_weights])
        return optimizer
    apply_weight_decay(model, recipe.weight_decay)
    if recipe.optimizer == "rmsprop":
        return RMSprop(schedule, rho=recipe.rmsprop_rho, momentum=recipe.momentum,
                       epsilon=recipe.epsilon, **ema)
    return SGD(schedule, momentum=recipe.momentum, nesterov=True, **ema)
