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

from keras_effnet.console import fit_verbosity
from keras_effnet.data import Augment, load
from keras_effnet.files import atomic_path, save_model, write_json
from keras_effnet.keras_private import AtomicBackup
from keras_effnet.model import build
from keras_effnet.optim import WarmupSchedule, apply_weight_decay, make_optimizer
from keras_effnet.progressive import Progressive, Stage, as_progressive
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


def starting_weights(config: ModelConfig, weights: Any, skip_head: bool
                     ) -> tuple[str | None, bool, str]:
    """(weights, skip_head, what the run starts from, in words) for `train`'s `weights`:
    "auto" is "imagenet" with a new head for a released variant that has ImageNet weights
    (checked here, before any work: a download that fails, or a missing package, is an
    error naming `weights=None`), None for any other model; a file must exist."""
    from keras_effnet import pretrained

    if weights is None or (isinstance(weights, str) and weights.lower() == "none"):
        return None, skip_head, "none (from scratch)"
    if isinstance(weights, str) and weights.lower() == "auto":
        try:
            variant = pretrained.variant_of(config)
        except ValueError:
            return None, skip_head, f"none (from scratch: {config.name} has no ImageNet weights)"
        try:
            pretrained.weights_file(variant)  # the file `build` loads, cached for it
        except ValueError as err:
            raise ValueError(f"{variant} starts from its ImageNet weights by default, which "
                             f"cannot be had here: {err}. Train from scratch with weights=None "
                             "(--weights=none)") from None
        return "imagenet", True, f"imagenet ({variant}'s ImageNet weights, new head)"
    if isinstance(weights, str) and weights.lower() == "imagenet":
        return "imagenet", skip_head, ("imagenet" + (", new head" if skip_head else ""))
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"weights file not found: {os.fspath(weights)!r}")
    path = os.path.abspath(weights)
    return path, skip_head, path + (", new head" if skip_head else "")


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
          num_classes: int | None = None, weights: str | os.PathLike | None = "auto",
          skip_head: bool = False, progressive: Any = None) -> dict[str, Any]:
    """Train a variant name / `ModelConfig` on a data spec; return (and write) the summary.

    The class count comes from the data; `num_classes`, when given, must agree with it.
    `weights` ("imagenet", or any file `build` loads: keras.applications, `.pth`,
    `.safetensors`) starts from pretrained weights: fine-tuning; `skip_head=True` gives the
    data's label set a fresh classifier. The recipe's zero-init then touches that fresh
    classifier only. The default, "auto", fine-tunes a released variant that has ImageNet
    weights from them with a new head (transfer: far better on small data) and trains any
    other model from scratch; None trains from scratch. The summary's "weights" says which.
    Starting from pretrained weights, a recipe given by name learns at its fine-tuning rate
    (`Recipe.fine_tuning`).

    `progressive` (True, a preset name "v2-s" / "v2-m" / "v2-l", or a
    `progressive.Progressive`) trains in stages whose image size, dropout, RandAugment
    magnitude and mixup grow together (EfficientNetV2's progressive learning; the schedule's
    RandAugment replaces the recipe's). Validation always runs at `resolution`, the size the
    saved model takes.

    `batch_size` is the global batch, split evenly across replicas. Re-running the same call
    after a crash resumes from the last finished epoch (BackupAndRestore in `out/backup`), in
    the stage that epoch belongs to.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs={epochs!r}; accepted: an integer >= 1")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}; accepted: an integer >= 1")
    named_recipe = isinstance(recipe, str)
    recipe = Recipe.named(recipe) if named_recipe else recipe
    config = scale(model) if isinstance(model, str) else model
    if not isinstance(config, ModelConfig):
        raise TypeError(f"model={model!r}; accepted: a variant name or a ModelConfig")
    resolution = resolution or config.resolution
    schedule = as_progressive(progressive)
    stages = None if schedule is None else schedule.plan(
        epochs, resolution, config.dropout_rate if recipe.dropout_rate is None
        else recipe.dropout_rate)
    weights, skip_head, start = starting_weights(config, weights, skip_head)
    if named_recipe and weights is not None:
        recipe = recipe.fine_tuning()
    source = weights
    dist = make_strategy(strategy)  # before anything starts the TensorFlow runtime
    policy = precision_policy(mixed_precision)
    replicas = dist.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f"global batch_size={batch_size} cannot be split evenly across "
                         f"{replicas} replicas; use a multiple of {replicas}")
    workers, worker_index = _worker(dist)
    chief = worker_index == 0
    keras.utils.set_random_seed(seed)
    shard = (workers, worker_index)
    dataset = load(data, resolution=resolution, batch_size=batch_size, seed=seed,
                   augment=Augment(recipe.crop_area_min, recipe.randaugment),
                   shard=shard, num_classes=num_classes)
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
            net = _compiled(config, dataset, None if stages else resolution, recipe, replicas,
                            batch_size, steps, epochs, weights, skip_head,
                            max((s.dropout for s in stages), default=0.0) if stages else None)
        config = net.effnet_config
        final = dataclasses.replace(net.build_options, input_shape=(resolution, resolution, 3))
        # One folder per worker, side by side (a worker's folder nested in the chief's raced
        # with the chief creating it).
        backup = os.path.join(out, "backup") if chief else os.path.join(
            out, f"backup_{dist.cluster_resolver.task_type}_{dist.cluster_resolver.task_id}")
        _claim_backup(backup, {
            "config": config.to_dict(), "recipe": dataclasses.asdict(recipe),
            "data": str(dataset.spec), "epochs": epochs, "global_batch_size": batch_size,
            "resolution": resolution, "mixed_precision": policy, "seed": seed,
            # fine-tuning: the starting weights (absent before training from scratch)
            "weights": None if source is None else [source, skip_head],
            **({"progressive": schedule.to_dict()} if schedule else {})})
        history = os.path.join(write_dir, "history.csv")
        started = time.time()
        if stages is None:
            net.fit(dataset.train, validation_data=dataset.validation, epochs=epochs,
                    callbacks=_callbacks(recipe, history, backup, write_dir, final),
                    verbose=fit_verbosity(verbose), shuffle=False)  # tf.data shuffles
            stage_rows = None
        else:
            stage_rows = _fit_stages(net, stages, schedule, dataset, data, recipe, batch_size,
                                     seed, shard, history, backup, write_dir, final,
                                     fit_verbosity(verbose))
        fit_seconds = time.time() - started
        # fit() has copied the EMA weights into the model when the recipe uses EMA.
        scores = net.evaluate(dataset.validation, verbose=0, return_dict=True)
        save_weights_only(net, os.path.join(write_dir, "model.keras"), options=final)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    summary = {
        "model": net.name, "config": config.to_dict(), "recipe": dataclasses.asdict(recipe),
        "data": dataset.describe(), "epochs": epochs, "global_batch_size": batch_size,
        "replicas": replicas, "strategy": f"{strategy} ({type(dist).__name__})",
        "mixed_precision": policy, "seed": seed,
        "validation": {k: float(v) for k, v in scores.items()},
        "initial_weights": source, "weights": start,
        "fit_seconds_this_run": round(fit_seconds, 2),
        "history": read_history(history),
        "artifacts": {"model": "model.keras", "best": "best.keras", "best_score": "best.json",
                      "history": "history.csv", "tensorboard": "logs"},
    }
    if schedule is not None:
        summary["progressive"] = {"schedule": schedule.to_dict(), "stages": stage_rows}
    write_json(summary, os.path.join(write_dir, "summary.json"))
    if not chief:
        shutil.rmtree(write_dir, ignore_errors=True)
    return summary


def _fit_stages(net: Any, stages: list[Stage], schedule: Progressive, dataset: Any, data: str,
                recipe: Recipe, batch_size: int, seed: int, shard: tuple[int, int],
                history: str, backup: str, write_dir: str, final: Any,
                verbose: Any) -> list[dict[str, Any]]:
    """One `fit` per stage on the same model and optimizer: the stage's training images at
    its size and augmentation, its dropout rate set on the classifier's dropout (the step is
    traced again for it). A resumed run starts in the stage of its last finished epoch; each
    finished stage is recorded in `stages.json` (size, regularisation, epochs, seconds,
    validation top-1), written atomically."""
    record = os.path.join(write_dir, "stages.json")
    done = AtomicBackup.finished_epochs(backup)
    rows = []
    if os.path.exists(record):
        with open(record, encoding="utf-8") as f:
            rows = [r for r in json.load(f) if r["end_epoch"] <= done]
    for stage in stages:
        if stage.end_epoch <= done and any(r["index"] == stage.index for r in rows):
            continue
        augment = Augment(recipe.crop_area_min, (schedule.randaugment_ops, stage.randaugment)
                          if stage.randaugment > 0 else None, stage.mixup)
        train_split = load(data, resolution=stage.size, batch_size=batch_size, seed=seed,
                           augment=augment, shard=shard,
                           num_classes=dataset.num_classes).train
        if any(layer.name == "top_dropout" for layer in net.layers):
            net.get_layer("top_dropout").rate = stage.dropout
        net.make_train_function(force=True)  # the dropout rate is a constant of the trace
        last = stage.index == len(stages) - 1
        started = time.time()
        net.fit(train_split, validation_data=dataset.validation, initial_epoch=stage.first_epoch,
                epochs=stage.end_epoch, verbose=verbose, shuffle=False,
                callbacks=[StageLog(stage)] + _callbacks(recipe, history, backup, write_dir,
                                                         final, last_stage=last))
        scores = [r for r in read_history(history) if r["epoch"] == stage.end_epoch - 1]
        rows = [r for r in rows if r["index"] != stage.index] + [{
            **stage.to_dict(), "seconds": round(time.time() - started, 2),
            "val_accuracy": scores[0].get("val_accuracy") if scores else None}]
        write_json(rows, record)
    return rows


# `train`'s steps beyond checking its arguments and opening the data.

def _compiled(config: ModelConfig, dataset: Any, resolution: int | None, recipe: Recipe,
              replicas: int, batch_size: int, steps: int, epochs: int, weights: Any,
              skip_head: bool, dropout_rate: float | None = None) -> Any:
    """The model to fit, built and compiled in the strategy's scope: the recipe's
    regularisation set at build time, batch statistics over the global batch (as the
    reference's cross-replica TPU batch norm), the data's class names, and the optimizer
    built before the first step. `resolution` None: any input size (progressive learning,
    whose stages set `dropout_rate`)."""
    net = build(config, num_classes=dataset.num_classes, input_shape=(resolution, resolution, 3),
                dropout_rate=recipe.dropout_rate if dropout_rate is None else dropout_rate,
                drop_path_rate=recipe.drop_path_rate,
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


def _callbacks(recipe: Recipe, history: str, backup: str, write_dir: str, final: Any,
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
    """Adds the stage's image size and regularisation to each epoch's logs (so to the
    history): what every epoch of a progressive run trained with, resumed ones included."""

    def __init__(self, stage: Stage) -> None:
        super().__init__()
        self.stage = stage

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if logs is not None:
            logs.update(stage=self.stage.index, image_size=self.stage.size,
                        dropout=self.stage.dropout, randaugment=self.stage.randaugment,
                        mixup=self.stage.mixup)


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
