"""Every private Keras name the package touches, in one place.

Each class is a mixin (or subclass) that overrides one private hook, applied where it is
needed: `TrainerFixes` by `model.EfficientNet`, `ReferenceEMA` by the optimizers of
`optim`, `AtomicBackup` by `train`; `consumers` and `caller_input` (read by the export's int8 bias
correction) read a layer's outbound and inbound nodes. `PRIVATE_NAMES` lists every private name used here with
its owner; `tests/test_layout.py` fails loudly when a Keras upgrade removes one, instead of
the override silently never running.
"""

from __future__ import annotations

import os
from typing import Any

import keras

from keras_effnet.files import atomic_path, write_json

# (owner, private name): the hooks overridden or read below
PRIVATE_NAMES = (
    (keras.Model, "_maybe_symbolic_build"),
    (keras.Model, "_symbolic_build"),
    (keras.Model, "_distribute_strategy"),  # an attribute of compiled/fitted models
    (keras.optimizers.Optimizer, "_update_model_variables_moving_average"),
    (keras.optimizers.Optimizer, "_model_variables_moving_average"),  # set when EMA is built
    (keras.callbacks.BackupAndRestore, "_save_model"),
    (keras.optimizers.Optimizer, "_learning_rate"),  # the schedule it was made with
    (keras.callbacks.BackupAndRestore, "_weights_path"),
    (keras.callbacks.BackupAndRestore, "_training_metadata_path"),
    (keras.callbacks.BackupAndRestore, "_current_epoch"),
    (keras.callbacks.BackupAndRestore, "_last_batch_seen"),
    (keras.Operation, "_outbound_nodes"),  # read by `consumers`
    (keras.Operation, "_inbound_nodes"),  # read by `caller_input`
)


def consumers(layer: Any, model: Any) -> list[Any]:
    """The layers of `model` that take `layer`'s output (its outbound nodes; Keras has no
    public graph-walking API for this)."""
    members = {id(other) for other in model.layers}
    return [node.operation for node in layer._outbound_nodes if id(node.operation) in members]


def caller_input(layer: Any) -> Any:
    """The one symbolic tensor `layer` is called on in the graph that holds it; None when it is
    called more than once or on several tensors (its inbound nodes)."""
    nodes = layer._inbound_nodes
    if len(nodes) != 1 or len(nodes[0].input_tensors) != 1:
        return None
    return nodes[0].input_tensors[0]


def _first_batch(iterator: Any) -> Any:
    """The first batch of a Keras TF trainer's epoch iterator (None: no iterator, or empty)."""
    for _, _, batches in iterator or ():
        return next(batches, None)
    return None


class TrainerFixes:
    """Mixin for a `keras.Model`: three fixes to Keras 3.15's TensorFlow trainer. Reads the
    private `_distribute_strategy`, overrides `_maybe_symbolic_build` (calling
    `_symbolic_build`)."""

    def _maybe_symbolic_build(self, iterator: Any = None, data_batch: Any = None) -> None:
        strategy = getattr(self, "_distribute_strategy", None)
        plain = strategy is None and keras.backend.backend() == "tensorflow"
        first = (_first_batch(iterator) if data_batch is None and (plain or strategy is not None)
                 else None)
        if plain:
            # With no strategy set (plain `model.fit`), Keras leaves the optimizer and metrics
            # to be built inside the first traced step, and tf.function traces a step that
            # creates variables twice (lite0 at 64 px: ~7 s more). Build them here, from the
            # first batch's shapes, as Keras does under a strategy; an empty input is left to
            # Keras's own error.
            batch = first if data_batch is None else data_batch
            if batch is not None:
                self._symbolic_build(data_batch=batch)
            return
        if first is not None:
            # Keras 3.15's TF trainer builds metrics from one batch reduced with
            # strategy.reduce, which MultiWorkerMirroredStrategy rejects for an (x, y) tuple
            # (keras-team/keras#20585). Shapes are all the build needs: take the first
            # replica's local batch instead.
            data_batch, iterator = keras.tree.map_structure(
                lambda v: strategy.experimental_local_results(v)[0]
                if hasattr(strategy, "experimental_local_results")
                and type(v).__name__ in ("PerReplica", "Mirrored") else v, first), None
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    # *args: the JAX backend's steps also take (and return) the model state.
    def train_step(self, *args: Any) -> Any:
        return self._logs_for_multi_worker(super().train_step(*args))

    def test_step(self, *args: Any) -> Any:
        return self._logs_for_multi_worker(super().test_step(*args))

    def _logs_for_multi_worker(self, logs: Any) -> Any:
        # Under MultiWorkerMirroredStrategy Keras 3.15 averages each step's logs with
        # strategy.reduce("MEAN", axis=0), which rejects scalars (tensorflow/tensorflow#72388):
        # give every log value a length-1 axis for that reduction to remove.
        strategy = getattr(self, "_distribute_strategy", None)
        multi_worker = getattr(getattr(strategy, "extended", None), "_in_multi_worker_mode", None)
        if multi_worker is None or not multi_worker():
            return logs
        return {name: keras.ops.reshape(value, (1,)) for name, value in logs.items()}


class ReferenceEMA:
    """The reference's weight average (`tf.train.ExponentialMovingAverage` with num_updates):
    at update n the decay is min(ema_decay, (1 + n) / (10 + n)), so the average follows the
    weights from the start. Keras's own EMA uses the full decay from step 2: with 0.9999 its
    average stays near the initial weights for ~10 000 steps, all of a short run. The first
    update copies the weights (Keras starts the average at zero)."""

    def finalize_variable_values(self, var_list: Any) -> None:
        """Keras passes the model's trainable weights, fewer than the averages when staged
        fine-tuning has frozen layers: the averages are of every variable the optimizer was
        built with (a frozen one's is its value)."""
        super().finalize_variable_values(self._trainable_variables if self.use_ema
                                         else var_list)

    def _update_model_variables_moving_average(self, trainable_variables: Any) -> None:
        if not self.use_ema:
            return
        n = keras.ops.cast(self.iterations + 1, "float32")
        decay = keras.ops.where(self.iterations == 0, 0.0,
                                keras.ops.minimum(self.ema_momentum, (1.0 + n) / (10.0 + n)))
        for var, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                d = keras.ops.cast(decay, var.dtype)
                average.assign(d * average + (1 - d) * var)


def learning_rate_schedule(optimizer: Any) -> Any:
    """The learning rate (schedule) an optimizer was made with; a loss-scale wrapper's, its
    inner optimizer's."""
    return getattr(optimizer, "inner_optimizer", optimizer)._learning_rate


class AtomicBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore whose one checkpoint is overwritten in place atomically (a temporary
    file renamed over it) instead of copying the previous one aside first
    (`double_checkpoint`): a kill mid-write leaves the last complete checkpoint, at half the
    bytes written per epoch."""

    @classmethod
    def finished_epochs(cls, backup_dir: str) -> int:
        """Epochs finished by the run backed up in `backup_dir` (0: none)."""
        import json

        path = cls(backup_dir)._training_metadata_path
        if not os.path.exists(path):
            return 0
        with open(path, encoding="utf-8") as f:
            return int(json.load(f)["epoch"])

    def _save_model(self) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        with atomic_path(self._weights_path) as staged:
            self.model.save_weights(staged)
        write_json({"epoch": self._current_epoch, "batch": self._last_batch_seen},
                   self._training_metadata_path)
