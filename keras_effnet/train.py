"""Train with plain `model.fit`: the paper's recipe or short-run defaults, any tf.distribute
strategy, mixed precision, and crash-safe resume.

`train()` builds the model inside the strategy's scope, compiles it with the recipe, and runs
`fit` with BackupAndRestore (a killed run restarted with the same command resumes from its last
finished epoch), a best-by-validation-accuracy checkpoint, TensorBoard logs and a CSV history.
The final `.keras` model (EMA weights when the recipe uses EMA) and a JSON summary are written
atomically into `out`.

Example:
    >>> from keras_effnet.train import train
    >>> summary = train("lite0", data="synthetic", epochs=20, batch_size=64, resolution=64,
    ...                 out="runs/lite0")
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
from typing import Any

import keras
import tensorflow as tf

from keras_effnet.data import Augment, load
from keras_effnet.files import atomic_path, save_model, write_json
from keras_effnet.keras_private import AtomicBackup
from keras_effnet.model import build
from keras_effnet.optim import WarmupSchedule, apply_weight_decay, make_optimizer
from keras_effnet.recipe import Recipe
from keras_effnet.scaling import ModelConfig, scale

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
PRECISIONS = {"none": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """'auto': MirroredStrategy when more than one GPU is visible, else the default strategy;
    'mirrored': all local GPUs (all logical CPUs when there is none); 'multi_worker': reads
    TF_CONFIG; 'tpu': the TPU cluster the resolver finds."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy={name!r}; accepted: {', '.join(STRATEGIES)}")
    if name == "multi_worker":  # first: collectives must be set up before the runtime starts
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy='multi_worker' needs the TF_CONFIG environment variable "
                             "(cluster and task); see docs/distributed.md")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as err:
        raise ValueError(f"strategy='tpu' found no TPU: {err}") from None
    return tf.distribute.TPUStrategy(resolver)


def precision_policy(mixed_precision: str) -> str:
    """'auto' is float16 on GPUs, bfloat16 on TPUs and none (float32) on CPUs (most CPUs
    emulate bfloat16 arithmetic; pass 'bfloat16' on one with AVX512-BF16/AMX)."""
    if mixed_precision == "auto":
        if tf.config.list_logical_devices("TPU"):
            return PRECISIONS["bfloat16"]
        return PRECISIONS["float16" if tf.config.list_logical_devices("GPU") else "none"]
    if mixed_precision not in PRECISIONS:
        raise ValueError(f"mixed_precision={mixed_precision!r}; accepted: auto, "
                         f"{', '.join(PRECISIONS)}")
    return PRECISIONS[mixed_precision]


def zero_init(model: keras.Model, config: ModelConfig, blocks: bool = True) -> None:
    """Start every residual block as the identity and the classifier at zero output.

    Each skip block's last batch norm gets γ = 0 and the classifier kernel 0: the paper's
    classifier initialiser (fan-out variance) gives logits of std ≈ 4 for a 10-class head,
    a saturated softmax at step 0. Initial values only; the architecture is unchanged.
    `blocks=False` zeroes the classifier alone (a fresh head on pretrained blocks).
    """
    for block in config.blocks if blocks else ():
        if block.has_skip:
            bn = model.get_layer(block.name + "_project_bn")
            bn.gamma.assign(keras.ops.zeros_like(bn.gamma))
    if any(layer.name == "predictions" for layer in model.layers):
        kernel = model.get_layer("predictions").kernel
        kernel.assign(keras.ops.zeros_like(kernel))


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

    def __init__(self, path: str, monitor: str = "val_accuracy") -> None:
        super().__init__()
        self.path, self.monitor, self.best = path, monitor, -math.inf
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
            self._twin = save_weights_only(self.model, self.path, self._twin)
            write_json({"epoch": epoch, self.monitor: self.best}, self.score_path)


def save_weights_only(model: Any, path: str, twin: Any = None) -> Any:
    """Write `model` as a `.keras` file without its optimizer: an uncompiled copy (`twin`,
    made once and returned for reuse) holding its current weights. Resuming needs the
    optimizer state, and the backup keeps it; a deliverable does not, and with Adam's two
    moments it would be three times the size."""
    if twin is None:
        twin = type(model)(model.effnet_config, model.build_options, name=model.name,
                           class_names=model.class_names)
    twin.set_weights(model.get_weights())
    save_model(twin, path)
    return twin


def _worker(strategy: tf.distribute.Strategy) -> tuple[int, int]:
    """(worker count, this worker's index) of a multi-worker cluster; the chief (or worker 0
    when there is no chief) is index 0. (1, 0) outside a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1, 0
    cluster = resolver.cluster_spec().as_dict()
    tasks = [(job, i) for job in ("chief", "worker") for i in range(len(cluster.get(job, [])))]
    me = (resolver.task_type, resolver.task_id)
    return (len(tasks), tasks.index(me)) if me in tasks else (1, 0)


def _claim_backup(backup: str, settings: dict[str, Any]) -> None:
    """Mark `backup` as this run's, or check that the unfinished run in it had these settings:
    resuming another run's checkpoint (other data, model or epochs) would go on silently with
    the wrong weights and schedule."""
    settings = json.loads(json.dumps(settings, default=str))  # the form it takes in the file
    path = os.path.join(backup, "run.json")
    checkpointed = os.path.isdir(backup) and set(os.listdir(backup)) - {"run.json"}
    if checkpointed and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        changed = sorted(k for k in settings.keys() | previous.keys()
                         if settings.get(k) != previous.get(k))
        if changed:
            raise ValueError(f"{backup!r} holds an unfinished run with other settings "
                             f"({', '.join(changed)} differ): rerun that run's command to resume "
                             "it, or delete the folder to start over")
        return
    os.makedirs(backup, exist_ok=True)
    write_json(settings, path)


def _prepare_out(out: str) -> None:
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"cannot create output folder {out!r}: {err}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise PermissionError(f"output folder is not writable: {out!r}")


def train(model: str | ModelConfig = "lite0", *, data: str = "synthetic", epochs: int = 25,
          batch_size: int = 64, recipe: Recipe | str = "short", strategy: str = "auto",
          mixed_precision: str = "none", resolution: int | None = None, out: str = "runs/train",
          seed: int = 0, verbose: str | int = "auto",
          num_classes: int | None = None, weights: str | os.PathLike | None = None,
          skip_head: bool = False) -> dict[str, Any]:
    """Train a variant name / `ModelConfig` on a data spec; return (and write) the summary.

    The class count comes from the data; `num_classes`, when given, must agree with it.
    `weights` ("imagenet", or any file `build` loads: keras.applications, `.pth`,
    `.safetensors`) starts from pretrained weights: fine-tuning; `skip_head=True` gives the data's label set a fresh
    classifier. The recipe's zero-init then touches that fresh classifier only.

    `batch_size` is the global batch, split evenly across replicas. Re-running the same call
    after a crash resumes from the last finished epoch (BackupAndRestore in `out/backup`).
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs={epochs!r}; accepted: an integer >= 1")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}; accepted: an integer >= 1")
    recipe = Recipe.named(recipe) if isinstance(recipe, str) else recipe
    config = scale(model) if isinstance(model, str) else model
    if not isinstance(config, ModelConfig):
        raise TypeError(f"model={model!r}; accepted: a variant name or a ModelConfig")
    resolution = resolution or config.resolution
    imagenet = isinstance(weights, str) and weights.lower() == "imagenet"
    if weights is not None and not imagenet and not os.path.isfile(weights):
        raise FileNotFoundError(f"weights file not found: {os.fspath(weights)!r}")
    source = None if weights is None else "imagenet" if imagenet else os.path.abspath(weights)
    dist = make_strategy(strategy)  # before anything starts the TensorFlow runtime
    policy = precision_policy(mixed_precision)
    replicas = dist.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f"global batch_size={batch_size} cannot be split evenly across "
                         f"{replicas} replicas; use a multiple of {replicas}")
    workers, worker_index = _worker(dist)
    chief = worker_index == 0
    keras.utils.set_random_seed(seed)
    dataset = load(data, resolution=resolution, batch_size=batch_size, seed=seed,
                   augment=Augment(recipe.crop_area_min, recipe.randaugment),
                   shard=(workers, worker_index), num_classes=num_classes)
    _prepare_out(out)  # after the data checks: bad data leaves no folder behind
    # Non-chief workers write their copies where nobody reads them (collectives need them all).
    write_dir = out if chief else tempfile.mkdtemp(prefix="effnet-worker-")
    steps = dataset.train_size // batch_size if dataset.train_size > 0 else None
    if steps is None:
        steps = sum(1 for _ in dataset.train)
    previous_policy = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        with dist.scope():
            net = _compiled(config, dataset, resolution, recipe, replicas, batch_size, steps,
                            epochs, weights, skip_head)
        config = net.effnet_config
        # One folder per worker, side by side (a worker's folder nested in the chief's raced
        # with the chief creating it).
        backup = os.path.join(out, "backup") if chief else os.path.join(
            out, f"backup_{dist.cluster_resolver.task_type}_{dist.cluster_resolver.task_id}")
        _claim_backup(backup, {
            "config": config.to_dict(), "recipe": dataclasses.asdict(recipe),
            "data": str(dataset.spec), "epochs": epochs, "global_batch_size": batch_size,
            "resolution": resolution, "mixed_precision": policy, "seed": seed,
            # fine-tuning: the starting weights (absent before training from scratch)
            "weights": None if source is None else [source, skip_head]})
        history = os.path.join(write_dir, "history.csv")
        started = time.time()
        net.fit(dataset.train, validation_data=dataset.validation, epochs=epochs,
                callbacks=_callbacks(recipe, history, backup, write_dir), verbose=verbose,
                shuffle=False)  # tf.data shuffles
        fit_seconds = time.time() - started
        # fit() has copied the EMA weights into the model when the recipe uses EMA.
        scores = net.evaluate(dataset.validation, verbose=0, return_dict=True)
        save_weights_only(net, os.path.join(write_dir, "model.keras"))
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    summary = {
        "model": net.name, "config": config.to_dict(), "recipe": dataclasses.asdict(recipe),
        "data": dataset.describe(), "epochs": epochs, "global_batch_size": batch_size,
        "replicas": replicas, "strategy": f"{strategy} ({type(dist).__name__})",
        "mixed_precision": policy, "seed": seed,
        "validation": {k: float(v) for k, v in scores.items()},
        "initial_weights": source, "fit_seconds_this_run": round(fit_seconds, 2),
        "history": read_history(history),
        "artifacts": {"model": "model.keras", "best": "best.keras", "best_score": "best.json",
                      "history": "history.csv", "tensorboard": "logs"},
    }
    write_json(summary, os.path.join(write_dir, "summary.json"))
    if not chief:
        shutil.rmtree(write_dir, ignore_errors=True)
    return summary


# `train`'s steps beyond checking its arguments and opening the data.

def _compiled(config: ModelConfig, dataset: Any, resolution: int, recipe: Recipe, replicas: int,
              batch_size: int, steps: int, epochs: int, weights: Any, skip_head: bool) -> Any:
    """The model to fit, built and compiled in the strategy's scope: the recipe's
    regularisation set at build time, batch statistics over the global batch (as the
    reference's cross-replica TPU batch norm), the data's class names, and the optimizer
    built before the first step."""
    net = build(config, num_classes=dataset.num_classes, input_shape=(resolution, resolution, 3),
                dropout_rate=recipe.dropout_rate, drop_path_rate=recipe.drop_path_rate,
                bn_momentum=recipe.bn_momentum, bn_synchronized=replicas > 1,
                weights=weights, skip_head=skip_head)
    net.class_names = dataset.class_names  # saved with the model: labels inside
    if recipe.zero_init and (weights is None or skip_head):
        zero_init(net, net.effnet_config, blocks=weights is None)
    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    if dataset.num_classes > 5:
        metrics.append(keras.metrics.TopKCategoricalAccuracy(5, name="top5"))
    net.compile(optimizer=make_optimizer(recipe, batch_size, steps, epochs, net),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
                metrics=metrics)
    # Keras builds the optimizer in the first traced step when no strategy is set, and a step
    # that creates variables is traced twice: build it here, traced once.
    net.optimizer.build(net.trainable_variables)
    return net


def _callbacks(recipe: Recipe, history: str, backup: str, write_dir: str) -> list[Any]:
    """At an epoch's end, in this order: its history row (a backed-up epoch has one), the
    backup (raw weights), the EMA swap, then the best checkpoint (the EMA weights scored)."""
    callbacks = [HistoryCSV(history), AtomicBackup(backup)]
    if recipe.ema_decay is not None:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    return callbacks + [BestCheckpoint(os.path.join(write_dir, "best.keras")),
                        keras.callbacks.TensorBoard(os.path.join(write_dir, "logs"))]


def evaluate(model_path: str, data: str = "synthetic", batch_size: int = 64,
             resolution: int | None = None) -> dict[str, float]:
    """Top-1 / top-5 of a saved model on a data spec's validation split, at the model's input
    size (`resolution`, when given, must equal it: a mismatch is an error, not a resize)."""
    from keras_effnet.artifacts import load_model

    net = load_model(model_path, compile=False)
    size = net.input_shape[1]
    if size is None:
        raise ValueError(f"{model_path!r} takes any input size; evaluate needs a fixed one")
    if resolution is not None and resolution != size:
        raise ValueError(f"resolution={resolution} but {model_path!r} takes {size}x{size} "
                         "images; leave resolution out to use the model's")
    resolution = size
    dataset = load(data, resolution=resolution, batch_size=batch_size)
    classes = net.output_shape[-1]
    if classes != dataset.num_classes:
        raise ValueError(f"{model_path!r} has {classes} classes but data {data!r} has "
                         f"{dataset.num_classes}")
    metrics = [keras.metrics.CategoricalAccuracy(name="top1")]
    if classes > 5:
        metrics.append(keras.metrics.TopKCategoricalAccuracy(5, name="top5"))
    net.compile(loss="categorical_crossentropy", metrics=metrics)
    scores = net.evaluate(dataset.validation, verbose=0, return_dict=True)
    return {k: float(v) for k, v in scores.items() if k != "loss"}


__all__ = ["Recipe", "WarmupSchedule", "apply_weight_decay", "evaluate", "make_strategy",
           "precision_policy", "train"]
