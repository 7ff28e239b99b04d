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

import dataclasses
import json
import os
import shutil
import tempfile
import time
import warnings
from typing import Any

import keras
import tensorflow as tf

from keras_effnet.callbacks import (BestCheckpoint, HistoryCSV, KeepRawWeights, StageLog,
                                    epoch_callbacks, read_history, save_weights_only)
from keras_effnet.console import fit_verbosity
from keras_effnet.data import Augment, load
from keras_effnet.errors import InvalidArgument, InvalidType, MissingFile
from keras_effnet.fine_tuning import FineTuning, as_fine_tuning, cut
from keras_effnet.files import write_json
from keras_effnet.keras_private import AtomicBackup, learning_rate_schedule
from keras_effnet.model import build
from keras_effnet.optim import WarmupSchedule, apply_weight_decay, make_optimizer
from keras_effnet.profile import profile
from keras_effnet.progressive import Progressive, Stage, as_progressive, concern
from keras_effnet.recipe import Recipe
from keras_effnet.runs import RunData, RunFolder, RunSummary, claim_settings, prepare_folder
from keras_effnet.scaling import ModelConfig, scale

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
PRECISIONS = {"none": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """'auto': MirroredStrategy when more than one GPU is visible, else the default strategy;
    'mirrored': all local GPUs (all logical CPUs when there is none); 'multi_worker': reads
    TF_CONFIG; 'tpu': the TPU cluster the resolver finds."""
    if name not in STRATEGIES:
        raise InvalidArgument(f"strategy={name!r}; accepted: {', '.join(STRATEGIES)}")
    if name == "multi_worker":  # first: collectives must be set up before the runtime starts
        if "TF_CONFIG" not in os.environ:
            raise InvalidArgument("strategy='multi_worker' needs the TF_CONFIG environment "
                                  "variable (cluster and task); see docs/distributed.md")
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
        raise InvalidArgument(f"strategy='tpu' found no TPU: {err}") from None
    return tf.distribute.TPUStrategy(resolver)


def precision_policy(mixed_precision: str) -> str:
    """'auto' is float16 on GPUs, bfloat16 on TPUs and none (float32) on CPUs (most CPUs
    emulate bfloat16 arithmetic; pass 'bfloat16' on one with AVX512-BF16/AMX)."""
    if mixed_precision == "auto":
        if tf.config.list_logical_devices("TPU"):
            return PRECISIONS["bfloat16"]
        return PRECISIONS["float16" if tf.config.list_logical_devices("GPU") else "none"]
    if mixed_precision not in PRECISIONS:
        raise InvalidArgument(f"mixed_precision={mixed_precision!r}; accepted: auto, "
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
        variant = pretrained.released_variant(config)
        if variant is None:
            return None, skip_head, f"none (from scratch: {config.name} has no ImageNet weights)"
        try:
            pretrained.weights_file(variant)  # the file `build` loads, cached for it
        except ValueError as err:
            raise InvalidArgument(f"{variant} starts from its ImageNet weights by default, "
                                  f"which cannot be had here: {err}. Train from scratch with "
                                  "weights=None (--weights=none)") from None
        return "imagenet", True, f"imagenet ({variant}'s ImageNet weights, new head)"
    if isinstance(weights, str) and weights.lower() == "imagenet":
        return "imagenet", skip_head, ("imagenet" + (", new head" if skip_head else ""))
    if not os.path.isfile(weights):
        raise MissingFile(f"weights file not found: {os.fspath(weights)!r}")
    path = os.path.abspath(weights)
    return path, skip_head, path + (", new head" if skip_head else "")


def train(model: str | ModelConfig = "lite0", *, data: str = "synthetic", epochs: int = 25,
          batch_size: int = 64, recipe: Recipe | str = "short", strategy: str = "auto",
          mixed_precision: str = "none", resolution: int | None = None, out: str = "runs/train",
          seed: int = 0, verbose: str | int = "auto",
          num_classes: int | None = None, weights: str | os.PathLike | None = "auto",
          skip_head: bool = False, progressive: Any = None,
          fine_tuning: str | FineTuning = "full") -> dict[str, Any]:
    """Train a variant name / `ModelConfig` on a data spec; return (and write) the summary.

    The class count comes from the data; `num_classes`, when given, must agree with it.
    `resolution` (default: the model's own) is the size the run trains, validates and saves
    the model at, and the saved config's resolution.
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

    `fine_tuning` (a run from pretrained weights): "full" trains everything from the first
    step; "staged" (or a `fine_tuning.FineTuning`) trains the classifier alone on the frozen
    backbone first, then unfreezes the blocks from the top at a share of the rate, batch
    normalization in inference mode throughout (the Keras transfer-learning guide's way;
    measured below full fine-tuning on the digits and the embedded set, docs/training.md).

    `batch_size` is the global batch, split evenly across replicas. Re-running the same call
    after a crash resumes from the last finished epoch (BackupAndRestore in `out/backup`), in
    the stage that epoch belongs to.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise InvalidArgument(f"epochs={epochs!r}; accepted: an integer >= 1")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument(f"batch_size={batch_size!r}; accepted: an integer >= 1")
    named_recipe = isinstance(recipe, str)
    recipe = Recipe.named(recipe) if named_recipe else recipe
    config = scale(model) if isinstance(model, str) else model
    if not isinstance(config, ModelConfig):
        raise InvalidType(f"model={model!r}; accepted: a variant name or a ModelConfig")
    if resolution and resolution != config.resolution:  # the size the run saves, on record
        config = dataclasses.replace(config, resolution=resolution)
    resolution = config.resolution
    schedule = as_progressive(progressive)
    own_dropout = config.dropout_rate if recipe.dropout_rate is None else recipe.dropout_rate
    if schedule is not None:  # its settings checked before anything is read or written
        schedule.plan(epochs, resolution, own_dropout)
    weights, skip_head, start = starting_weights(config, weights, skip_head)
    fine = _fine_tuning(as_fine_tuning(fine_tuning), weights, skip_head)
    if named_recipe and weights is not None:
        recipe = recipe.fine_tuning()
    source = weights
    dist = make_strategy(strategy)  # before anything starts the TensorFlow runtime
    policy = precision_policy(mixed_precision)
    replicas = dist.num_replicas_in_sync
    if batch_size % replicas:
        raise InvalidArgument(f"global batch_size={batch_size} cannot be split evenly across "
                              f"{replicas} replicas; use a multiple of {replicas}")
    workers, worker_index = _worker(dist)
    chief = worker_index == 0
    keras.utils.set_random_seed(seed)
    shard = (workers, worker_index)
    dataset = load(data, resolution=resolution, batch_size=batch_size, seed=seed,
                   augment=Augment(recipe.crop_area_min, recipe.randaugment),
                   shard=shard, num_classes=num_classes)
    stages = None if schedule is None else schedule.plan(
        epochs, resolution, own_dropout, params=profile(config).params,
        images=dataset.train_size if dataset.train_size > 0 else None)
    if schedule is not None and (notice := concern(stages, accelerated=bool(
            tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU")))):
        warnings.warn(notice, UserWarning, stacklevel=2)
    if fine is not None:
        stages = cut(stages or [Stage(0, 0, epochs, resolution, own_dropout, recipe.randaugment[1]
                                      if recipe.randaugment else 0.0, 0.0)],
                     fine.plan(epochs, len(config.blocks)))
    prepare_folder(out)  # after the data checks: bad data leaves no folder behind
    # Non-chief workers write their copies where nobody reads them (collectives need them all).
    write_dir = out if chief else tempfile.mkdtemp(prefix="effnet-worker-")
    # Every epoch (of every stage) fits `steps` batches of the training split repeated: while
    # the split's length is unknown to tf.data (a decoded folder's: a broken file is skipped),
    # Keras 3.15 counts one empty batch more per epoch in the training metrics and loss.
    steps = dataset.train_size // batch_size if dataset.train_size > 0 else None
    if steps is None:
        steps = sum(1 for _ in dataset.train)
    previous_policy = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        with dist.scope():
            net = _compiled(config, dataset, None if schedule else resolution, recipe, replicas,
                            batch_size, steps, epochs, weights, skip_head,
                            max(s.dropout for s in stages) if schedule else None)
        config = net.effnet_config
        final = dataclasses.replace(net.build_options, input_shape=(resolution, resolution, 3))
        # One folder per worker, side by side (a worker's folder nested in the chief's raced
        # with the chief creating it).
        backup = os.path.join(out, "backup") if chief else os.path.join(
            out, f"backup_{dist.cluster_resolver.task_type}_{dist.cluster_resolver.task_id}")
        # Resuming another run's checkpoint (other data, model or epochs) would go on silently
        # with the wrong weights and schedule: only a folder holding no checkpoint is claimed.
        claim_settings(os.path.join(backup, "run.json"), {
            "config": config.to_dict(), "recipe": dataclasses.asdict(recipe),
            "data": str(dataset.spec), "epochs": epochs, "global_batch_size": batch_size,
            "resolution": resolution, "mixed_precision": policy, "seed": seed,
            # fine-tuning: the starting weights (absent before training from scratch)
            "weights": None if source is None else [source, skip_head],
            **({"progressive": schedule.to_dict()} if schedule else {}),
            **({"fine_tuning": fine.to_dict()} if fine else {})},
            "an unfinished run with other settings", "rerun that run's command to resume it, "
            "or delete the folder to start over",
            check=os.path.isdir(backup) and bool(set(os.listdir(backup)) - {"run.json"}))
        history = os.path.join(write_dir, "history.csv")
        started = time.time()
        if stages is None:
            net.fit(dataset.train.repeat(), steps_per_epoch=steps,
                    validation_data=dataset.validation, epochs=epochs,
                    callbacks=epoch_callbacks(recipe, history, backup, write_dir, final),
                    verbose=fit_verbosity(verbose), shuffle=False)  # tf.data shuffles
            stage_rows = None
        else:
            stage_rows = _fit_stages(net, stages, schedule, dataset, data, recipe, batch_size,
                                     steps, seed, shard, history, backup, write_dir, final,
                                     fit_verbosity(verbose))
            _freeze(net, None)
            learning_rate_schedule(net.optimizer).share = 1.0
        fit_seconds = time.time() - started
        # fit() has copied the EMA weights into the model when the recipe uses EMA.
        scores = net.evaluate(dataset.validation, verbose=0, return_dict=True)
        save_weights_only(net, os.path.join(write_dir, "model.keras"), options=final)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    summary = RunSummary(
        model=net.name, config=config.to_dict(), recipe=dataclasses.asdict(recipe),
        data=RunData(**dataset.describe()), epochs=epochs, global_batch_size=batch_size,
        replicas=replicas, strategy=f"{strategy} ({type(dist).__name__})",
        mixed_precision=policy, seed=seed,
        validation={k: float(v) for k, v in scores.items()},
        initial_weights=source, weights=start, fit_seconds_this_run=round(fit_seconds, 2),
        history=read_history(history),
        artifacts={"model": "model.keras", "best": "best.keras", "best_score": "best.json",
                   "history": "history.csv", "tensorboard": "logs"},
        progressive=None if schedule is None else {"schedule": schedule.to_dict()},
        fine_tuning=None if weights is None else {"mode": "staged" if fine else "full",
                                                  **(fine.to_dict() if fine else {})},
        stages=stage_rows)
    RunFolder(write_dir).write(summary)
    if not chief:
        shutil.rmtree(write_dir, ignore_errors=True)
    return summary.to_dict()


def _fine_tuning(mode: str | FineTuning, weights: Any, skip_head: bool) -> FineTuning | None:
    """The staged fine-tuning a run takes (None: full training)."""
    if mode == "full":
        return None
    if weights is None:
        raise InvalidArgument("staged fine-tuning trains a pretrained backbone; this run starts "
                              "from scratch (give weights, or fine_tuning='full')")
    return FineTuning() if mode == "staged" else mode


def _freeze(net: Any, train_from: int | None) -> None:
    """Blocks below `train_from` frozen, batch normalization in inference mode everywhere
    (`Stage.train_from`); the stem trains with the first block, the top convolution with the
    last, the classifier always. None: everything trains."""
    blocks = [block.name + "_" for block in net.effnet_config.blocks]
    for layer in net.layers:
        if train_from is None or isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = train_from is None
            continue
        rank = (len(blocks) if layer.name == "predictions" else len(blocks) - 1
                if layer.name.startswith("top_") else
                next((i for i, b in enumerate(blocks) if layer.name.startswith(b)), 0))
        layer.trainable = rank >= train_from


def _fit_stages(net: Any, stages: list[Stage], schedule: Progressive | None, dataset: Any,
                data: str, recipe: Recipe, batch_size: int, steps: int, seed: int,
                shard: tuple[int, int], history: str, backup: str, write_dir: str, final: Any,
                verbose: Any) -> list[dict[str, Any]]:
    """One `fit` per stage on the same model and optimizer: a progressive stage's training
    images at its size and augmentation, its dropout rate set on the classifier's dropout,
    the layers its fine-tuning step trains (the step is traced again for them). A resumed run
    starts in the stage of its last finished epoch; each finished stage is recorded in
    `stages.json` (size, regularisation, what trained, epochs, seconds, validation top-1),
    written atomically. Every epoch is `steps` batches of the training split repeated."""
    record = os.path.join(write_dir, "stages.json")
    done = AtomicBackup.finished_epochs(backup)
    rows = []
    if os.path.exists(record):
        with open(record, encoding="utf-8") as f:
            rows = [r for r in json.load(f) if r["end_epoch"] <= done]
    for stage in stages:
        if stage.end_epoch <= done and any(r["index"] == stage.index for r in rows):
            continue
        train_split = dataset.train
        if schedule is not None:
            augment = Augment(recipe.crop_area_min, (schedule.randaugment_ops, stage.randaugment)
                              if stage.randaugment > 0 else None, stage.mixup)
            train_split = load(data, resolution=stage.size, batch_size=batch_size, seed=seed,
                               augment=augment, shard=shard).train
        if any(layer.name == "top_dropout" for layer in net.layers):
            net.get_layer("top_dropout").rate = stage.dropout
        _freeze(net, stage.train_from)
        learning_rate_schedule(net.optimizer).share = stage.rate
        net.make_train_function(force=True)  # constants of the trace: dropout, what trains,
        # the rate's share
        last = stage.index == len(stages) - 1
        started = time.time()
        net.fit(train_split.repeat(), steps_per_epoch=steps, validation_data=dataset.validation,
                initial_epoch=stage.first_epoch,
                epochs=stage.end_epoch, verbose=verbose, shuffle=False,
                callbacks=[StageLog(stage)] + epoch_callbacks(recipe, history, backup,
                                                              write_dir, final, last_stage=last))
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
    built. `resolution` None: any input size (progressive learning, whose stages set
    `dropout_rate`)."""
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
    # Built on every variable before a stage freezes any: staged fine-tuning's later phases
    # train more of them with the same optimizer.
    net.optimizer.build(net.trainable_variables)
    return net


def evaluate(model_path: str, data: str = "synthetic", batch_size: int = 64,
             resolution: int | None = None) -> dict[str, float]:
    """Top-1 / top-5 of a saved model on a data spec's validation split, at the model's input
    size (`resolution`, when given, must equal it: a mismatch is an error, not a resize)."""
    from keras_effnet.artifacts import load_model

    net = load_model(model_path, compile=False)
    size = net.input_shape[1]
    if size is None:
        raise InvalidArgument(f"{model_path!r} takes any input size; evaluate needs a fixed one")
    if resolution is not None and resolution != size:
        raise InvalidArgument(f"resolution={resolution} but {model_path!r} takes {size}x{size} "
                              "images; leave resolution out to use the model's")
    resolution = size
    dataset = load(data, resolution=resolution, batch_size=batch_size)
    classes = net.output_shape[-1]
    if classes != dataset.num_classes:
        raise InvalidArgument(f"{model_path!r} has {classes} classes but data {data!r} has "
                              f"{dataset.num_classes}")
    metrics = [keras.metrics.CategoricalAccuracy(name="top1")]
    if classes > 5:
        metrics.append(keras.metrics.TopKCategoricalAccuracy(5, name="top5"))
    net.compile(loss="categorical_crossentropy", metrics=metrics)
    scores = net.evaluate(dataset.validation, verbose=0, return_dict=True)
    return {k: float(v) for k, v in scores.items() if k != "loss"}


__all__ = ["BestCheckpoint", "HistoryCSV", "KeepRawWeights", "Recipe", "StageLog",
           "WarmupSchedule", "apply_weight_decay", "evaluate", "make_strategy",
           "precision_policy", "read_history", "save_weights_only", "starting_weights", "train",
           "zero_init"]
