"""Classify image files with a model as it ships: `.keras`, `.tflite` or `.onnx`.

Each image gets the package's evaluation preprocessing (centre crop of 0.875 of the shorter
side, bicubic resize to the model's input size: `keras_effnet.data.eval_crop`) and runs in the
model's own runtime (Keras, the LiteRT interpreter, onnxruntime): the input contract of
`export/contract.py`, which every client shares. The scores are the model's probabilities as
the file gives them (dequantized, for an int8 file), or the softmax of its logits: the file
says which (the output contract). The labels are the file's own (TFLite metadata, ONNX
metadata_props, a `.keras` model's `class_names`), else the `summary.json` of the run beside
it, else class indices; the result says which.

Example:
    >>> result = predict("runs/quickstart/model_int8.tflite", ["photo.jpg"], top_k=3)
    >>> result["predictions"][0]["top"][0]
    {'index': 3, 'label': 'frame', 'probability': 0.97}
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, Sequence

import numpy as np

from keras_effnet.errors import InvalidArgument, MissingFile
from keras_effnet.runs import RunFolder, choose_labels

MODEL_SUFFIXES = (".keras", ".tflite", ".onnx")


class _Model:
    """A model file in its runtime: input size, labels with their source, and a batch call."""

    def __init__(self, path: str, num_threads: int) -> None:
        if not os.path.isfile(path):
            raise MissingFile(f"model file not found: {path!r}")
        if not path.endswith(MODEL_SUFFIXES):
            raise InvalidArgument(f"{path!r}: accepted models end in {', '.join(MODEL_SUFFIXES)}")
        from keras_effnet.export.contract import model_output_kind, output_kind

        self.labels: list[str] | None = None
        self.labels_source = "none (class indices)"
        if path.endswith(".keras"):
            from keras_effnet.artifacts import load_model

            model = load_model(path, compile=False)
            self.output = model_output_kind(model)
            shape, classes = tuple(model.inputs[0].shape[1:3]), model.outputs[0].shape[-1]
            self.run = lambda images: np.asarray(model.predict(images, verbose=0))
            self._own_labels(getattr(model, "class_names", None), "the model's class_names")
        elif path.endswith(".tflite"):
            from keras_effnet.export.runtime import TFLiteRunner
            from keras_effnet.export.tflite_metadata import read_labels

            runner = TFLiteRunner(path, num_threads)
            self.output = output_kind(path)
            shape = tuple(int(v) for v in runner.input["shape"][1:3])
            classes = int(runner.output["shape"][-1])
            self.run = runner
            self._own_labels(read_labels(path, classes), "the file's TFLite metadata")
        else:
            from keras_effnet.export.contract import ONNX_LABELS_KEY
            from keras_effnet.export.runtime import ONNXRunner

            runner = ONNXRunner(path, num_threads)
            self.output = output_kind(path)
            shape = tuple(runner.session.get_inputs()[0].shape[1:3])
            classes = runner.session.get_outputs()[0].shape[-1]
            self.run = runner
            props = runner.session.get_modelmeta().custom_metadata_map
            self._own_labels(_onnx_labels(props.get(ONNX_LABELS_KEY), path),
                             "the file's ONNX metadata")
        if len(shape) != 2 or not all(isinstance(v, int) for v in shape) or shape[0] != shape[1]:
            raise InvalidArgument(f"{path!r} takes images of {shape}; predict needs a fixed square "
                                  "input size")
        self.resolution = shape[0]
        chosen = choose_labels(own=self.labels, own_source=self.labels_source,
                               run=RunFolder.beside(path))  # else the run's, else indices
        self.labels, self.labels_source = chosen.names, chosen.source
        if self.labels is not None and isinstance(classes, int) and len(self.labels) != classes:
            raise InvalidArgument(f"{path}: {len(self.labels)} labels from {self.labels_source} "
                                  f"for a model with {classes} outputs; they must agree")

    def _own_labels(self, labels: list[str] | None, source: str) -> None:
        if self.labels is None and labels:
            self.labels, self.labels_source = list(labels), source


def _onnx_labels(text: str | None, path: str) -> list[str] | None:
    """The labels an ONNX file carries (a JSON list in its metadata_props), bounded and
    checked like a TFLite file's; None when it has none."""
    from keras_effnet.export.tflite_metadata import MAX_LABELS_BYTES, check_labels

    if text is None:
        return None
    if len(text) > MAX_LABELS_BYTES:
        raise InvalidArgument(f"{path}: its labels are larger than {MAX_LABELS_BYTES >> 20} MiB, "
                              "far above any real label set; refused")
    try:
        return check_labels(json.loads(text))
    except (ValueError, TypeError) as err:
        raise InvalidArgument(f"{path}: its labels (metadata_props) are not a list of class names "
                              f"({err})") from None


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


# Images above this many pixels are refused before decoding (a 0.8 MB PNG of 16 384² pixels
# decodes to 3.2 GB of float32): 100 MP covers a 12 000 x 8 000 photo; `max_pixels` raises it.
MAX_PIXELS = 100_000_000
MAX_IMAGE_BYTES = 512 << 20  # an encoded image file: far above a 100 MP photo's


def load_image(path: str, resolution: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """One image file, decoded to RGB and evaluation-cropped to `resolution` (float32 pixels
    in [0, 255]). A file that cannot be used raises a ValueError naming it and saying why in a
    user's words: "no such file", "permission denied", "not an image (<why>)", "image too
    large" (above `max_pixels`, read from its header before anything is decoded). Of an
    animated image (GIF, APNG, WebP) the first frame alone is decoded.

    A local file is read and its header checked here, so that a missing file or one of
    another kind fails no TensorFlow op (each would log its failure besides); a URL
    (gs://...) is read by TensorFlow."""
    import re

    import tensorflow as tf

    from keras_effnet.data import eval_crop

    def reason(err: Exception) -> str:
        """TensorFlow's own words, without its op and device decoration or the path."""
        text = re.sub(r"\{\{function_node [^}]*\}\}", "", str(getattr(err, "message", err)))
        text = re.sub(r"\s*\[Op:\w+\].*", "", text, flags=re.S).strip()
        text = text.removeprefix(f"{path}; ").splitlines()[0].rstrip(".") if text else ""
        return (text[:1].lower() + text[1:] if text[1:2].islower() else text) or type(
            err).__name__

    if "://" in path:
        try:
            data = tf.io.read_file(path).numpy()
        except tf.errors.NotFoundError:
            raise InvalidArgument(f"{path}: no such file") from None
        except tf.errors.OpError as err:
            raise InvalidArgument(f"{path}: cannot be read ({reason(err)})") from None
    else:
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_IMAGE_BYTES + 1)
        except FileNotFoundError:
            raise InvalidArgument(f"{path}: no such file") from None
        except IsADirectoryError:
            raise InvalidArgument(f"{path}: a folder, not an image file") from None
        except PermissionError:
            raise InvalidArgument(f"{path}: permission denied") from None
        except OSError as err:
            raise InvalidArgument(f"{path}: cannot be read ({err.strerror or err})") from None
    # the formats tf.io.decode_image reads, by their first bytes
    formats = {"JPEG": (b"\xff\xd8\xff",), "PNG": (b"\x89PNG\r\n\x1a\n",),
               "GIF": (b"GIF87a", b"GIF89a"), "BMP": (b"BM",), "JPEG XL": (
                   b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")}
    if not data:
        raise InvalidArgument(f"{path}: not an image (an empty file)")
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidArgument(f"{path}: file too large for an image (over {MAX_IMAGE_BYTES >> 20} "
                              "MiB)")
    if not (any(data.startswith(magic) for magics in formats.values() for magic in magics)
            or data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        raise InvalidArgument(f"{path}: not an image (not {', '.join(formats)} or WebP)")
    width, height, animated = _header(data, path, max_pixels)
    try:
        if animated:  # the first frame only (TensorFlow's decoder decodes every frame)
            image = _first_frame(data)
        else:
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.OpError, ValueError, OSError) as err:
        raise InvalidArgument(f"{path}: not an image ({reason(err)})") from None
    return eval_crop(image, resolution).numpy()


def _header(data: bytes, path: str, max_pixels: int) -> tuple[int, int, bool]:
    """(width, height, animated) of an encoded image, read from its header (Pillow, which
    decodes nothing here); a ValueError naming the file when it is above `max_pixels`: a
    decompression bomb costs nothing before it is refused."""
    import warnings

    from PIL import Image

    guard = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # the limit is `max_pixels`, checked below
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                (width, height), animated = image.size, getattr(image, "is_animated", False)
    except Exception:  # noqa: BLE001 - a header Pillow cannot read: TensorFlow decides
        return 0, 0, False
    finally:
        Image.MAX_IMAGE_PIXELS = guard
    if width * height > max_pixels:
        raise InvalidArgument(f"{path}: image too large ({width}x{height} = "
                              f"{width * height / 1e6:.0f} MP, above max_pixels={max_pixels:,}); "
                              "to classify it, raise the limit: max_pixels=N")
    return width, height, animated


def _first_frame(data: bytes) -> np.ndarray:
    """The first frame of an animated image as RGB pixels (uint8), nothing else decoded."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)
        return np.asarray(image.convert("RGB"))


def predict(model: str | os.PathLike, images: Sequence[str] | str, top_k: int = 5,
            num_threads: int = 2, max_pixels: int = MAX_PIXELS) -> dict[str, Any]:
    """Classify image files (and the images of folders) with a `.keras`, `.tflite` or `.onnx`
    model; return {"model", "labels_source", "output", "predictions": [{"image", "top":
    [{"index", "label", "probability"}]}], "skipped": [{"image", "error"}]}. "output" is the
    model's output kind: "probabilities" (shown as they are) or "logits" (shown through a
    softmax).

    A file that is not a readable image, or one above `max_pixels` (read from its header), is
    skipped and named in "skipped"; a missing model file, one of another kind, or labels
    that are broken or of another count than the outputs raise before any image is read.
    """
    from keras_effnet.export.contract import shown_scores

    for name, value in (("top_k", top_k), ("max_pixels", max_pixels)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidArgument(f"{name}={value!r}; accepted: an integer >= 1")
    path = os.fspath(model)
    loaded = _Model(path, num_threads)
    files = image_files([images] if isinstance(images, str) else list(images))
    predictions, skipped = [], []
    for file in files:
        try:
            pixels = load_image(file, loaded.resolution, max_pixels)
        except ValueError as err:
            skipped.append({"image": file, "error": str(err)})
            continue
        scores = shown_scores(loaded.run(pixels[None]), loaded.output)[0]
        order = np.argsort(-scores, kind="stable")[:top_k]
        predictions.append({"image": file, "top": [
            {"index": int(i), "label": loaded.labels[i] if loaded.labels else str(int(i)),
             "probability": round(float(scores[i]), 6)} for i in order]})
    return {"model": path, "labels_source": loaded.labels_source, "output": loaded.output,
            "predictions": predictions, "skipped": skipped}
