"""`effnet train` and `effnet eval`: a model trained on a data spec into a run folder, and a
saved model scored on a data spec's validation split."""

from __future__ import annotations

from typing import Literal

from absl.app import UsageError

from keras_effnet.cli.options import (BATCH_SIZE, DATA_SPEC, MODEL, SKIP_HEAD, TRAINING, Flag,
                                      Precision, Recipe, Strategy, changed, check_data,
                                      model_config, none_word, recipe as named_recipe)

TRAIN_FLAGS = {
    **MODEL, **TRAINING,
    "data": f"training data spec: {DATA_SPEC} (default synthetic); its validation split is held "
            "out",
    "num_classes": "must equal the data's class count (default: the data's)",
    "weights": Flag("starting weights: imagenet, a weights file (keras.applications "
                    ".h5/.keras/.weights.h5, or a PyTorch checkpoint .pth/.safetensors: timm "
                    "tf_efficientnet_*, efficientnet_pytorch, efficientnet_lite_pytorch), or "
                    "none: from scratch (default: a released variant that has ImageNet weights "
                    "starts from them with a new head, any other model from scratch)",
                    convert=none_word),
    "skip_head": SKIP_HEAD,
    "fine_tuning": "from pretrained weights: full (everything trains from the first step) or "
                   "staged (the new head alone on the frozen backbone, then the blocks unfrozen "
                   "from the top at 0.3 of the rate, batch norm frozen; docs/training.md)",
    "progressive": "progressive learning (EfficientNetV2): image size, dropout, RandAugment and "
                   "mixup grow together over --progressive_stages",
    "progressive_preset": "with --progressive: the V2 paper's Table 6 settings, or derived from "
                          "the model (docs/efficientnetv2.md)",
    "progressive_stages": "with --progressive: the number of stages",
    "progressive_start": "with --progressive: the first stage's image size (default: the "
                         "preset's, or 128/300 of the final size)",
    "out": "the run folder: model.keras, best.keras, summary.json, history.csv, stages.json with "
           "--progressive, logs/"}


def train(*, variant: str | None = None, phi: float | None = None,
          base: str = "efficientnet", base_resolution: int | None = None,
          resolution: int | None = None, data: str = "synthetic", epochs: int = 25,
          batch_size: int = 64, recipe: Recipe = "short", strategy: Strategy = "auto",
          mixed_precision: Precision = "none", learning_rate: float | None = None,
          seed: int = 0, num_classes: int | None = None, weights: str | None = "auto",
          skip_head: bool = False, fine_tuning: Literal["full", "staged"] = "full",
          progressive: bool = False,
          progressive_preset: Literal["derived", "v2-s", "v2-m", "v2-l"] = "derived",
          progressive_stages: int = 4, progressive_start: int | None = None,
          out: str = "runs/train") -> dict:
    """Train a model on a data spec into a run folder: a released variant that has ImageNet
    weights fine-tunes them with a new head, any other model trains from scratch (--weights
    says otherwise)."""
    check_data("data", data)
    settings = changed(train, progressive_preset=progressive_preset,
                       progressive_stages=progressive_stages, progressive_start=progressive_start)
    if settings and not progressive:  # before TensorFlow starts
        raise UsageError(f"{', '.join(settings)} need(s) --progressive")
    from keras_effnet.progressive import Progressive
    from keras_effnet.scaling import ModelConfig
    from keras_effnet.train import starting_weights, train as train_model

    schedule = None if not progressive else Progressive.preset(
        progressive_preset, stages=progressive_stages,
        **({} if progressive_start is None else {"start_size": progressive_start}))
    config = model_config(variant, phi, base, base_resolution)
    print(f"starting weights: {starting_weights(config, weights, skip_head)[2]}", flush=True)
    # by name without --learning_rate: the library picks the recipe's fine-tuning rate
    summary = train_model(
        config, data=data, epochs=epochs, batch_size=batch_size,
        recipe=recipe if learning_rate is None else named_recipe(recipe, learning_rate),
        strategy=strategy, mixed_precision=mixed_precision, resolution=resolution, out=out,
        seed=seed, num_classes=num_classes, weights=weights, skip_head=skip_head,
        progressive=schedule, fine_tuning=fine_tuning)
    blocks = len(ModelConfig.from_dict(summary["config"]).blocks)
    for stage in summary.get("stages") or []:
        trains = ("" if stage["train_from"] is None else ", training the classifier" if
                  stage["train_from"] == blocks else f", training from block "
                  f"{stage['train_from'] + 1}")
        print(f"stage {stage['index'] + 1}: epochs {stage['first_epoch'] + 1}-"
              f"{stage['end_epoch']} at {stage['size']} px, dropout {stage['dropout']:.3g}, "
              f"RandAugment {stage['randaugment']:.3g}, mixup {stage['mixup']:.3g}{trains}: "
              f"{stage['seconds']:.0f} s, val top-1 {stage['val_accuracy']:.4f}")
    scores = summary["validation"]
    print(f"validation: top-1 {scores['accuracy']:.4f}"
          + (f", top-5 {scores['top5']:.4f}" if "top5" in scores else "")
          + f" -> {out}/model.keras")
    return summary


EVAL_FLAGS = {"model": "the .keras model to score",
              "data": f"data spec whose validation split is scored: {DATA_SPEC} (default "
                      "synthetic)",
              "batch_size": BATCH_SIZE,
              "resolution": "must equal the model's input size (default: the model's)"}


def evaluate(*, model: str | None = None, data: str = "synthetic", batch_size: int = 64,
             resolution: int | None = None) -> dict:
    """Top-1 / top-5 of a saved model on a data spec's validation split."""
    if not model:
        raise UsageError("--model=PATH.keras is required")
    check_data("data", data)
    from keras_effnet.train import evaluate as score

    scores = score(model, data, batch_size, resolution=resolution)
    print("  ".join(f"{name}: {value:.4f}" for name, value in scores.items()))
    return scores
