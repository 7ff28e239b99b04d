"""The callbacks `train` fits with: a CSV history and a best-by-validation checkpoint that
continue across restarts, the per-stage logs and raw-weight keeping of progressive learning,
and the order they run in at an epoch's end (`epoch_callbacks`). Every file is written
atomically.
"""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Any

import keras

from keras_effnet.files import atomic_path, save_model, write_json
from keras_effnet.keras_private import AtomicBackup
from keras_effnet.progressive import Stage
from keras_effnet.recipe import Recipe


class HistoryCSV(keras.callbacks.Callback):
    """CSV history that continues across restarts: rows of epochs a resumed run redoes are
    dropped first, so the file always reads 0, 1, 2, … once each."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path, self._started = path, False

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        if not self._started:
            self._started = True
            rows = [r for r in read_history(self.path) if int(r["epoch"]) < epoch]
            self._write(rows)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        lr = self.model.optimizer.learning_rate
        row = {"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()},
               "lr": float(lr.numpy() if hasattr(lr, "numpy") else lr)}
        self._write(read_history(self.path) + [row])

    def _write(self, rows: list[dict[str, Any]]) -> None:
        keys = sorted({k for r in rows for k in r} - {"epoch"})
        with atomic_path(self.path) as staged, open(staged, "w", newline="",
                                                    encoding="utf-8") as f:
            writer = csv.DictWriter(f, ["epoch", *keys])
            writer.writeheader()
            writer.writerows(rows)


def read_history(path: str) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in r.items() if v != ""}
                for r in csv.DictReader(f)]


class BestCheckpoint(keras.callbacks.Callback):
    """Keep the model with the best validation accuracy, written atomically, its score in a
    JSON file beside it; a resumed run starts from that score, so it keeps a better file."""

    def __init__(self, path: str, monitor: str = "val_accuracy", options: Any = None) -> None:
        super().__init__()
        self.path, self.monitor, self.best, self.options = path, monitor, -math.inf, options
        self.score_path, self._begun = os.path.splitext(path)[0] + ".json", False
        self._twin: Any = None

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        resumed = epoch > 0 and not self._begun  # BackupAndRestore skipped finished epochs
        self._begun = True
        if resumed and os.path.exists(self.path) and os.path.exists(self.score_path):
            with open(self.score_path, encoding="utf-8") as f:
                self.best = float(json.load(f)[self.monitor])

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is not None and value > self.best:
            self.best = float(value)
            self._twin = save_weights_only(self.model, self.path, self._twin, self.options)
            write_json({"epoch": epoch, self.monitor: self.best}, self.score_path)


def save_weights_only(model: Any, path: str, twin: Any = None, options: Any = None) -> Any:
    """Write `model` as a `.keras` file without its optimizer: an uncompiled copy (`twin`,
    made once and returned for reuse) holding its current weights, built with `options`
    (default: the model's; a progressive run's free-size model is saved at its final size).
    Resuming needs the optimizer state, and the backup keeps it; a deliverable does not, and
    with Adam's two moments it would be three times the size."""
    if twin is None:
        twin = type(model)(model.effnet_config, options or model.build_options, name=model.name,
                           class_names=model.class_names)
    twin.set_weights(model.get_weights())
    save_model(twin, path)
    return twin


def epoch_callbacks(recipe: Recipe, history: str, backup: str, write_dir: str, final: Any,
                    last_stage: bool = True) -> list[Any]:
    """At an epoch's end, in this order: its history row (a backed-up epoch has one), the
    backup (raw weights), the EMA swap, then the best checkpoint (the EMA weights scored,
    saved at the final size). A progressive run's earlier stages keep their backup for the
    next, and keep training the raw weights (fit ends by copying the EMA into the model)."""
    callbacks = [HistoryCSV(history), AtomicBackup(backup, delete_checkpoint=last_stage)]
    if recipe.ema_decay is not None:
        if not last_stage:
            callbacks.append(KeepRawWeights())
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    return callbacks + [BestCheckpoint(os.path.join(write_dir, "best.keras"), options=final),
                        keras.callbacks.TensorBoard(os.path.join(write_dir, "logs"))]


class StageLog(keras.callbacks.Callback):
    """Adds the stage's image size, regularisation and (staged fine-tuning) first trained
    block to each epoch's logs (so to the history): what every epoch of a staged run trained
    with, resumed ones included."""

    def __init__(self, stage: Stage) -> None:
        super().__init__()
        self.stage = stage

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if logs is not None:
            logs.update(stage=self.stage.index, image_size=self.stage.size,
                        dropout=self.stage.dropout, randaugment=self.stage.randaugment,
                        mixup=self.stage.mixup)
            if self.stage.train_from is not None:  # staged fine-tuning
                logs.update(train_from=self.stage.train_from)


class KeepRawWeights(keras.callbacks.Callback):
    """Puts the trained (not averaged) weights back when a `fit` ends: Keras ends every fit by
    copying the EMA into the model, right for the last stage of a progressive run, wrong for
    the stages the training goes on from."""

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:  # before the EMA swap
        self._raw = [keras.ops.convert_to_numpy(v) for v in self.model.trainable_weights]

    def on_train_end(self, logs: Any = None) -> None:
        if getattr(self, "_raw", None) is not None:
            for variable, value in zip(self.model.trainable_weights, self._raw):
                variable.assign(value)
