"""What every client of an exported classifier agrees on: the image it sees and what its
scores mean.

**The image** (the input contract): the centre square of `CENTRE_CROP` (0.875) of the shorter
side, resized to the model's input size: ImageNet's evaluation crop, as keras.applications
evaluates and the paper reports. `effnet predict`, `effnet eval`, verification, the web page
of `effnet app` and the MediaPipe calls of docs/shipping.md (a region of interest,
`crop_box`) all feed that square; the file's metadata says so (`INPUT_CONTRACT`).

**The scores** (the output contract): a model's output is `probabilities` (a softmax head) or
`logits`. The model knows it (`build_options.classifier_activation`); each exported file
records it (the TFLite output tensor's metadata name, `tflite_metadata.OUTPUT_NAMES`; the
ONNX property `output`), and every
reader takes it from there: nothing is guessed from sums (an int8 softmax over 1 000 classes
sums to 0.69-0.94). Probabilities are shown as the file gives them (dequantized, for an int8
file); logits through a softmax (`shown_scores`).

Example:
    >>> crop_box(600, 400)        # (left, top, right, bottom), fractions of the image
    (0.208333, 0.0625, 0.791667, 0.9375)
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from keras_effnet.data import EVAL_CROP
from keras_effnet.errors import InvalidArgument

CENTRE_CROP = EVAL_CROP
PROBABILITIES, LOGITS = "probabilities", "logits"
OUTPUT_KINDS = (PROBABILITIES, LOGITS)
ONNX_OUTPUT_KEY = "output"  # metadata_props key of an ONNX file's output kind
ONNX_LABELS_KEY = "labels"  # metadata_props key of an ONNX file's class names (JSON list)
INPUT_CONTRACT = (f"the image is the centre square of {CENTRE_CROP:g} of its shorter side, "
                  "resized to the input size")


def crop_box(width: int, height: int, crop: float = CENTRE_CROP
             ) -> tuple[float, float, float, float]:
    """The centre square of `crop` of the shorter side of a `width` x `height` image, as
    (left, top, right, bottom) fractions of the image: MediaPipe's region of interest
    (`ImageProcessingOptions(region_of_interest=RectF(...))`), rounded to 6 places."""
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgument(f"{name}={value!r}; accepted: an integer >= 1 (pixels)")
    side = int(min(width, height) * crop)  # as eval_crop: whole pixels
    left, top = (width - side) // 2, (height - side) // 2
    return (round(left / width, 6), round(top / height, 6), round((left + side) / width, 6),
            round((top + side) / height, 6))


def model_output_kind(model: Any) -> str:
    """`probabilities` or `logits`: a Keras model's output, from its build options, else its
    last layer's activation (a QAT wrapper's inner layer)."""
    options = getattr(model, "build_options", None)
    if options is not None:
        softmax = options.include_top and options.classifier_activation == "softmax"
    else:
        last = model.layers[-1]
        activation = getattr(getattr(last, "layer", last), "activation", None)
        softmax = getattr(activation, "__name__", None) == "softmax"
    return PROBABILITIES if softmax else LOGITS


def _tflite_kind(path: str) -> str:
    from keras_effnet.export.tflite_metadata import OUTPUT_NAMES, model_root, output_name

    name = output_name(path)
    for kind, known in OUTPUT_NAMES.items():
        if name == known:
            return kind
    # No metadata of ours: the op that computes the output, past (de)quantization.
    from ai_edge_litert import schema_py_generated as schema

    root = model_root(path)
    graph = root.Subgraphs(0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if k.isupper()}
    producer = {graph.Operators(i).Outputs(0): graph.Operators(i)
                for i in range(graph.OperatorsLength())}
    tensor = graph.Outputs(0)
    while tensor in producer:
        op = producer[tensor]
        code = root.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
        if name not in ("DEQUANTIZE", "QUANTIZE", "RESHAPE"):
            return PROBABILITIES if name == "SOFTMAX" else LOGITS
        tensor = op.Inputs(0)
    return LOGITS


def _onnx_kind(path: str) -> str:
    import onnx

    proto = onnx.load(path, load_external_data=False)
    props = {p.key: p.value for p in proto.metadata_props}
    if props.get(ONNX_OUTPUT_KEY) in OUTPUT_KINDS:
        return props[ONNX_OUTPUT_KEY]
    producer = {out: node for node in proto.graph.node for out in node.output}
    tensor = proto.graph.output[0].name
    while tensor in producer:
        node = producer[tensor]
        if node.op_type not in ("Identity", "Cast", "Reshape"):
            return PROBABILITIES if node.op_type == "Softmax" else LOGITS
        tensor = node.input[0]
    return LOGITS


def output_kind(path: str) -> str:
    """`probabilities` or `logits` of a model file: a `.tflite` or `.onnx` file's own record
    (else the op that computes its output), a `.keras` model's head."""
    path = os.fspath(path)
    if path.endswith(".tflite"):
        return _tflite_kind(path)
    if path.endswith(".onnx"):
        return _onnx_kind(path)
    from keras_effnet.artifacts import load_model

    return model_output_kind(load_model(path, compile=False))


def shown_scores(outputs: np.ndarray, kind: str) -> np.ndarray:
    """The scores a user is shown for model outputs of `kind`: probabilities as they are,
    logits through a softmax (over the last axis)."""
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"output kind {kind!r}; accepted: {', '.join(OUTPUT_KINDS)}")
    x = np.asarray(outputs, "float64")
    if kind == PROBABILITIES:
        return x
    x = np.exp(x - x.max(-1, keepdims=True))
    return x / x.sum(-1, keepdims=True)


def onnx_props(kind: str, labels: list[str] | None) -> dict[str, str]:
    """The metadata_props an ONNX file of ours carries: its output kind, its labels."""
    props = {ONNX_OUTPUT_KEY: kind}
    if labels is not None:
        props[ONNX_LABELS_KEY] = json.dumps(labels)
    return props
