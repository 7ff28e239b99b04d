"""`effnet quickstart`, the main job, as a function: build, train, export (TFLite float32 and
int8, ONNX) with the metadata apps read, verify, check in MediaPipe Tasks, classify an image,
report. Its defaults are its own (QUICKSTART_DEFAULTS), not `effnet train`'s."""

from __future__ import annotations

import os
import time

from keras_effnet.cli.options import (DATA_SPEC, MODEL, TRAINING, Flag, Precision, Recipe,
                                      Strategy, check_data, model_config, none_word,
                                      recipe as named_recipe)
from keras_effnet.cli.reports import metadata_line, report_table
from keras_effnet.errors import UserError

# The default model (lite0, no --variant/--phi) fine-tunes the ImageNet Lite0 weights at 64 px:
# 4 epochs of 25 steps reach about 0.98 validation top-1 on the embedded set in ~40 s on 2
# cores, where 12 epochs from scratch at 48 px reached 0.64-0.69 (BUILD_NOTES.md, "Main job").
# With the short recipe, a quarter of its learning rate suits fine-tuning; from scratch, twice
# its rate learns fastest in few epochs.
QUICKSTART_DEFAULTS = {"data": "synthetic?train=1600&validation=400", "epochs": 4,
                       "batch_size": 64, "base_resolution": 64}
QUICKSTART_LEARNING_RATES = {"fine-tuning": 0.006, "from scratch": 0.048}
QUICKSTART_FLAGS = {
    **MODEL, **TRAINING,
    "variant": "released variant: b0..b7, lite0..lite4, v2-b0..v2-l (default lite0)",
    "base_resolution": "resolution at φ = 0", "data": f"data spec: {DATA_SPEC}",
    "batch_size": "global batch size",
    "learning_rate": "override the recipe's learning rate (per 256 images; default with "
                     "--recipe=short: " + ", ".join(
                         f"{rate} {kind}" for kind, rate in QUICKSTART_LEARNING_RATES.items())
                     + ")",
    "weights": Flag("starting weights: imagenet, or a weights file (default: a released "
                    "variant's ImageNet weights with a new head, as the default lite0; none for "
                    "--phi; --weights=none or --weights= trains from scratch)",
                    convert=none_word),
    "out": "the run folder"}


def quickstart(*, variant: str | None = None, phi: float | None = None,
               base: str = "efficientnet",
               base_resolution: int = QUICKSTART_DEFAULTS["base_resolution"],
               resolution: int | None = None, data: str = QUICKSTART_DEFAULTS["data"],
               epochs: int = QUICKSTART_DEFAULTS["epochs"],
               batch_size: int = QUICKSTART_DEFAULTS["batch_size"], recipe: Recipe = "short",
               strategy: Strategy = "auto", mixed_precision: Precision = "none",
               learning_rate: float | None = None, seed: int = 0,
               weights: str | None = "auto", out: str = "runs/quickstart") -> dict:
    """The main job: build, train, export (TFLite float32 and int8, ONNX) with the metadata apps
    read, verify, check in MediaPipe Tasks, classify an image, report.

    Each artifact is verified in its runtime before it is written. Defaults: lite0 at 64 px,
    fine-tuned from its ImageNet weights for 4 epochs of batch 64 on 1 600 synthetic images
    (400 held out). Any flag overrides them, e.g. --data=folder:PATH, --phi=1 --base=lite,
    --variant=lite2 --weights=imagenet, --base_resolution=96 (the φ = 0 size every model is
    scaled from), --epochs=30, --strategy=mirrored --mixed_precision=auto on GPUs."""
    started = time.monotonic()
    check_data("data", data)  # a bad spec fails here, before anything is written
    import keras_effnet
    from keras_effnet import export
    from keras_effnet.train import starting_weights, train

    config = model_config(variant or (None if phi is not None else "lite0"), phi, base,
                          base_resolution)
    # As `effnet train`: a released variant starts from its ImageNet weights (new head).
    weights, _, start = starting_weights(config, weights, True)
    if recipe == "short" and learning_rate is None:  # tuned for it
        learning_rate = QUICKSTART_LEARNING_RATES["fine-tuning" if weights else "from scratch"]
    resolution = resolution or config.resolution
    chosen = named_recipe(recipe, learning_rate)
    print(f"[quickstart] 1/5 build {config.name} at {resolution} px, starting weights: {start}",
          flush=True)
    print(config.summary())
    print(f"[quickstart] 2/5 {'fine-tune' if weights else 'train'} on {data} for {epochs} "
          f"epochs of batch {batch_size}, {chosen.name} recipe ({chosen.optimizer}, "
          f"learning rate {chosen.learning_rate:g} per 256 images) -> {out}", flush=True)
    summary = train(config, data=data, epochs=epochs, batch_size=batch_size, recipe=chosen,
                    strategy=strategy, mixed_precision=mixed_precision, resolution=resolution,
                    out=out, seed=seed, weights=weights, skip_head=weights is not None)
    trained = time.monotonic()
    model = keras_effnet.load_model(os.path.join(out, "model.keras"), compile=False)
    print("[quickstart] 3/5 export float32 and int8 TFLite (with image-classifier metadata and "
          "labels) and ONNX, verify in their runtimes", flush=True)
    common = {"verify_data": data, "verify_count": 256}
    jobs = [(export.to_tflite, "model_float32.tflite", {}),
            (export.to_tflite, "model_int8.tflite", {"quantize": "int8",
                                                     "representative_data": data}),
            (export.to_onnx, "model.onnx", {})]
    reports = []
    with export.traced(model) as graph:  # one trace and SavedModel for the three artifacts
        for convert, name, kwargs in jobs:
            try:
                reports.append(convert(graph, os.path.join(out, name), **kwargs, **common))
            except export.VerificationError as failed:  # reported in the table, not written
                reports.append({**failed.report, "artifact": name})
    exported = time.monotonic()
    int8 = os.path.join(out, "model_int8.tflite")
    print("[quickstart] 4/5 check model_int8.tflite in MediaPipe Tasks' ImageClassifier",
          flush=True)
    client = _client_check(int8, data, resolution)
    print("[quickstart] 5/5 report")
    scores = summary["validation"]
    print(f"validation top-1 (Keras, {summary['data']['validation_size']} images): "
          f"{scores['accuracy']:.4f}" + (f", top-5 {scores['top5']:.4f}" if "top5" in scores
                                         else ""))
    print(report_table(reports))
    for r in reports:
        print(f"{r['artifact']}: {r['checked']}")
        if r.get("tflite_metadata"):
            print(f"{r['artifact']}: {metadata_line(r['tflite_metadata'])}")
    print(client)
    example = _example_image(data, resolution, out)
    if os.path.exists(int8):
        from keras_effnet.export.predict import predict

        top = predict(int8, [example], top_k=3)["predictions"][0]["top"]
        print(f"$ effnet predict --model={int8} {example}\n{example}: " + ", ".join(
            f"{t['label']} {t['probability']:.3f}" for t in top))
    finished = time.monotonic()
    print(f"time: {finished - started:.0f} s ({trained - started:.0f} s building and training, "
          f"{exported - trained:.0f} s exporting and verifying, {finished - exported:.0f} s "
          "checking in MediaPipe and predicting)")
    print(f"artifacts in {out}: model.keras, model_float32.tflite, model_int8.tflite, "
          "model.onnx (each with a .json report), summary.json, history.csv, logs/, "
          f"{os.path.basename(example)}")
    failed = [r["artifact"] for r in reports if not r["passed"]]
    if failed:
        raise UserError(f"verification failed for {', '.join(failed)} (see the table); "
                        "those artifacts were not written")
    return {"summary": summary, "reports": reports, "client": client, "example": example}


def _client_check(path: str, data: str, resolution: int) -> str:
    """One line: the int8 file in MediaPipe Tasks against the LiteRT interpreter."""
    from keras_effnet.data import examples
    from keras_effnet.export import mediapipe_client

    if not os.path.exists(path):
        return "MediaPipe check: skipped (the int8 file was not written)"
    if not mediapipe_client.available():
        return ("MediaPipe check: skipped (mediapipe is not installed here; `make setup` "
                "installs it)")
    images, targets = examples(data, resolution, 64, split="validation")
    checked = mediapipe_client.check(path, images, targets)
    return (f"MediaPipe Tasks ImageClassifier on model_int8.tflite, {checked['images']} "
            f"validation images: loads as is, top-1 agrees with the LiteRT interpreter on "
            f"{checked['top1_agreement']:.0%}, scores within "
            + (f"{checked['max_score_diff']:.2g}" if checked["output_step"] is None else
               f"{checked['max_score_diff_steps']:g} output steps")
            + ", labels "
            f"{'as in the run' if checked['labels_agree'] else 'DIFFER'}, top-1 accuracy "
            f"{checked['accuracy']:.3f}")


def _example_image(data: str, resolution: int, out: str) -> str:
    """A validation image of the run's data, written as PNG into `out` (what `effnet predict`
    is shown on)."""
    import numpy as np
    import tensorflow as tf

    from keras_effnet.data import examples
    from keras_effnet.files import atomic_path

    image, _ = examples(data, resolution, 1, split="validation")
    path = os.path.join(out, "example.png")
    with atomic_path(path) as tmp:
        tf.io.write_file(tmp, tf.io.encode_png(np.clip(np.round(image[0]), 0, 255)
                                               .astype("uint8")))
    return path
