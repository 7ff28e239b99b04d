"""Classify image files with a model as it ships: `.keras`, `.tflite` or `.onnx`.

Each image gets the package's evaluation preprocessing (centre crop of 0.875 of the shorter
side, bicubic resize to the model's input size: `keras_effnet.data.eval_crop`) and runs in the
model's own runtime (Keras, the LiteRT interpreter, onnxruntime). The labels are the file's own
(TFLite metadata, ONNX metadata_props, a `.keras` model's `class_names`), else the
`summary.json` of the run beside it, else class indices; the result says which.

Example:
    >>> result = predict("runs/quickstart/model_int8.tflite", ["photo.jpg"], top_k=3)
    >>> result["predictions"][0]["top"][0]
    {'index': 3, 'label': 'frame', 'probability': 0.97}
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np

MODEL_SUFFIXES = (".keras", ".tflite", ".onnx")


class _Model:
    """A model file in its runtime: input size, labels with their source, and a batch call."""

    def __init__(self, path: str, num_threads: int) -> None:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"model file not found: {path!r}")
        if not path.endswith(MODEL_SUFFIXES):
            raise ValueError(f"{path!r}: accepted models end in {', '.join(MODEL_SUFFIXES)}")
        self.labels: list[str] | None = None
        self.labels_source = "none (class indices)"
        if path.endswith(".keras"):
            from keras_effnet.artifacts import load_model

            model = load_model(path, compile=False)
            shape = tuple(model.inputs[0].shape[1:3])
            self.run = lambda images: np.asarray(model.predict(images, verbose=0))
            self._own_labels(getattr(model, "class_names", None), "the model's class_names")
        elif path.endswith(".tflite"):
            from keras_effnet.export.runtime import TFLiteRunner
            from keras_effnet.export.tflite_metadata import read_labels

            runner = TFLiteRunner(path, num_threads)
            shape = tuple(int(v) for v in runner.input["shape"][1:3])
            self.run = runner
            self._own_labels(read_labels(path), "the file's TFLite metadata")
        else:
            from keras_effnet.export import ONNX_LABELS_KEY
            from keras_effnet.export.runtime import ONNXRunner

            runner = ONNXRunner(path, num_threads)
            shape = tuple(runner.session.get_inputs()[0].shape[1:3])
            self.run = runner
            props = runner.session.get_modelmeta().custom_metadata_map
            self._own_labels(json.loads(props[ONNX_LABELS_KEY]) if ONNX_LABELS_KEY in props
                             else None, "the file's ONNX metadata")
        if len(shape) != 2 or not all(isinstance(v, int) for v in shape) or shape[0] != shape[1]:
            raise ValueError(f"{path!r} takes images of {shape}; predict needs a fixed square "
                             "input size")
        self.resolution = shape[0]
        if self.labels is None:
            summary = os.path.join(os.path.dirname(path) or ".", "summary.json")
            self._own_labels(_run_labels(summary), f"{summary} (the run's data)")

    def _own_labels(self, labels: list[str] | None, source: str) -> None:
        if self.labels is None and labels:
            self.labels, self.labels_source = list(labels), source


def _run_labels(summary: str) -> list[str] | None:
    """The class names an `effnet train` run recorded in its summary.json, if any."""
    try:
        with open(summary, encoding="utf-8") as f:
            names = json.load(f)["data"]["class_names"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [str(name) for name in names] if isinstance(names, list) else None


def image_files(paths: Sequence[str]) -> list[str]:
    """Files as given and the image files of folders (sorted, not recursive)."""
    from keras_effnet.data import IMAGE_SUFFIXES

    files = []
    for path in paths:
        if os.path.isdir(path):
            files += [os.path.join(path, name) for name in sorted(os.listdir(path))
                      if name.lower().endswith(IMAGE_SUFFIXES)
                      and os.path.isfile(os.path.join(path, name))]
        else:
            files.append(path)
    return files


def load_image(path: str, resolution: int) -> np.ndarray:
    """One image file, decoded to RGB and evaluation-cropped to `resolution` (float32 pixels
    in [0, 255]); a ValueError naming the file when it is missing or not an image."""
    import tensorflow as tf

    from keras_effnet.data import eval_crop

    try:
        data = tf.io.read_file(path)
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.OpError, ValueError) as err:
        reason = str(getattr(err, "message", err)).strip().splitlines()[0]
        raise ValueError(f"{path}: not a readable image ({reason})") from None
    return eval_crop(image, resolution).numpy()


def predict(model: str | os.PathLike, images: Sequence[str] | str, top_k: int = 5,
            num_threads: int = 2) -> dict[str, Any]:
    """Classify image files (and the images of folders) with a `.keras`, `.tflite` or `.onnx`
    model; return {"model", "labels_source", "predictions": [{"image", "top": [{"index",
    "label", "probability"}]}], "skipped": [{"image", "error"}]}.

    A file that is not a readable image is skipped and named in "skipped"; a missing model
    file or one of another kind raises.
    """
    from keras_effnet.export.verify import probabilities

    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ValueError(f"top_k={top_k!r}; accepted: an integer >= 1")
    path = os.fspath(model)
    loaded = _Model(path, num_threads)
    files = image_files([images] if isinstance(images, str) else list(images))
    predictions, skipped = [], []
    for file in files:
        try:
            pixels = load_image(file, loaded.resolution)
        except ValueError as err:
            skipped.append({"image": file, "error": str(err)})
            continue
        # quantized probabilities sum to 1 within a few output steps only
        scores = probabilities(loaded.run(pixels[None]), atol=0.05)[0]
        if loaded.labels is not None and len(loaded.labels) != len(scores):
            raise ValueError(f"{len(loaded.labels)} labels from {loaded.labels_source} for a "
                             f"model with {len(scores)} outputs")
        order = np.argsort(-scores, kind="stable")[:top_k]
        predictions.append({"image": file, "top": [
            {"index": int(i), "label": loaded.labels[i] if loaded.labels else str(int(i)),
             "probability": round(float(scores[i]), 6)} for i in order]})
    return {"model": path, "labels_source": loaded.labels_source,
            "predictions": predictions, "skipped": skipped}
