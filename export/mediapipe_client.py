"""Our TFLite files in MediaPipe Tasks' `ImageClassifier`, the on-device API apps call.

MediaPipe (PyPI `mediapipe`, installed by `make setup` beside the package; see the Makefile
for why it is not an extra) runs the same C++ graph as Android, iOS and the web: it reads the
file's metadata (input normalisation, labels), feeds the image and reads the scores. `check`
classifies images there and compares each answer with the LiteRT interpreter's on the same
pixels: the proof that an app gets what the export verified.

`classify_files` classifies image files exactly as docs/shipping.md tells app developers to:
`mp.Image.create_from_file`, the input contract's square as the region of interest
(`ImageProcessingOptions(region_of_interest=RectF(...))` from `contract.crop_box`) and the
output contract's scores (a logits file's through a softmax over every class), so that the
tests hold the documented calls to the labels `effnet predict` gives.

Example:
    >>> check("runs/quickstart/model_int8.tflite", images)["top1_agreement"]
    1.0
    >>> classify_files("runs/quickstart/model_int8.tflite", ["photo.jpg"], top_k=1)
    [[(3, 'frame', 0.97)]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_effnet.errors import InvalidArgument


def available() -> bool:
    """Whether MediaPipe Tasks imports here."""
    try:
        import mediapipe.tasks.python.vision  # noqa: F401
    except ImportError:
        return False
    return True


def classify(path: str, images: np.ndarray) -> list[list[tuple[int, str, float]]]:
    """Every category (index, name, score) of each image, by MediaPipe's `ImageClassifier`
    on the file as it is; `images` are (N, H, W, 3) RGB pixels (uint8, or whole numbers)."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    pixels = np.asarray(images)
    if pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise InvalidArgument(f"images of shape {pixels.shape}; accepted: (N, H, W, 3) RGB")
    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=path),
                                            max_results=-1)
    results = []
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for image in np.clip(np.round(pixels), 0, 255).astype(np.uint8):
            answer = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                  data=np.ascontiguousarray(image)))
            results.append([(c.index, c.category_name, float(c.score))
                            for c in answer.classifications[0].categories])
    return results


def region_of_interest(width: int, height: int) -> Any:
    """MediaPipe's `ImageProcessingOptions` whose region of interest is the input contract's
    square of a `width` x `height` image (`contract.crop_box`). RectF is given by keyword: its
    fields are ordered (left, top, bottom, right), not as the box is."""
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.components.containers.rect import RectF

    from keras_effnet.export.contract import crop_box

    left, top, right, bottom = crop_box(width, height)
    return vision.ImageProcessingOptions(region_of_interest=RectF(
        left=left, top=top, right=right, bottom=bottom))


def classify_files(path: str, files: list[str], top_k: int | None = None
                   ) -> list[list[tuple[int, str, float]]]:
    """The top `top_k` (None: every) categories (index, name, score) of each image file, best
    first, by MediaPipe's `ImageClassifier` as docs/shipping.md shows it: the file read by
    `mp.Image.create_from_file`, the centre square of the input contract as the region of
    interest, scores as the output contract says (`contract.output_kind` of the file: a
    logits file's through a softmax over every class)."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    from keras_effnet.export.contract import LOGITS, output_kind, shown_scores

    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool)
                              or top_k < 1):
        raise InvalidArgument(f"top_k={top_k!r}; accepted: None (every category) or an integer "
                              ">= 1")
    kind = output_kind(path)
    options = vision.ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=path),
        max_results=-1 if kind == LOGITS or top_k is None else top_k)
    results = []
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for file in files:
            image = mp.Image.create_from_file(file)
            answer = classifier.classify(image, image_processing_options=region_of_interest(
                image.width, image.height))
            found = [(c.index, c.category_name, float(c.score))
                     for c in answer.classifications[0].categories]
            if kind == LOGITS and found:
                scores = shown_scores(np.array([score for _, _, score in found]), kind)
                found = sorted(((i, name, float(p)) for (i, name, _), p in zip(found, scores)),
                               key=lambda c: -c[2])
            results.append(found if top_k is None else found[:top_k])
    return results


def output_step(interpreter: Any) -> float | None:
    """The quantization step of the scores: the output's own scale when it is an integer
    tensor, else the scale of the integer tensor of its shape that a float output
    dequantizes (an int8 file with float I/O); None for a float model."""
    output = interpreter.get_output_details()[0]
    if not np.issubdtype(output["dtype"], np.floating):
        return float(output["quantization"][0])
    scales = [float(t["quantization"][0]) for t in interpreter.get_tensor_details()
              if list(t["shape"]) == list(output["shape"]) and t["quantization"][0] > 0
              and not np.issubdtype(t["dtype"], np.floating)]
    return max(scales) if scales else None


def check(path: str, images: np.ndarray, targets: np.ndarray | None = None,
          labels: list[str] | None = None) -> dict[str, Any]:
    """MediaPipe's answers against the LiteRT interpreter's on the same (rounded) pixels.

    Returns the top-1 agreement, the largest score difference (also in output quantization
    steps for an integer output), whether MediaPipe named each class as `labels` (default:
    the file's labels file) does, MediaPipe's top-1 name of each image and, given the true
    class indices `targets`, MediaPipe's accuracy.
    """
    from keras_effnet.export.runtime import TFLiteRunner
    from keras_effnet.export.tflite_metadata import read_labels

    pixels = np.clip(np.round(np.asarray(images, "float32")), 0, 255)
    answers = classify(path, pixels)
    runner = TFLiteRunner(path)
    expected = runner(pixels)
    scores = np.zeros_like(expected)
    named = labels if labels is not None else read_labels(path)
    names_agree = True
    for row, answer in zip(scores, answers):
        for index, name, score in answer:
            row[index] = score
            names_agree &= named is not None and name == named[index]
    diff = float(np.max(np.abs(scores - expected))) if len(expected) else 0.0
    step = output_step(runner.interpreter)
    return {"client": "MediaPipe Tasks ImageClassifier", "images": int(len(pixels)),
            "top1_agreement": float(np.mean(scores.argmax(-1) == expected.argmax(-1))),
            "max_score_diff": diff, "output_step": step,
            "max_score_diff_steps": None if step is None else round(diff / step, 3),
            "labels_agree": bool(names_agree),
            "top1": [answer[0][1] if answer else None for answer in answers],
            "accuracy": None if targets is None else float(np.mean(
                scores.argmax(-1) == np.asarray(targets)))}
