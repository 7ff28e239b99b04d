"""Keras model -> TFLite flatbuffer, restricted to TFLite builtin ops.

The converter is `tf.lite.TFLiteConverter.from_saved_model` on a SavedModel exported from a
float32 rebuild of the model (mixed-precision graphs do not convert; a concrete function of a
Keras 3 model keeps its variables as resources, which the converter does not freeze). int8 is
full-integer (TFLITE_BUILTINS_INT8 only) calibrated on representative images, with the
weight-rounding bias corrected first (`bias_correction`: from a traced model, its SavedModel
with the corrected values written in, no second trace); its input/output can stay float32 or
be uint8/int8 (a phone then feeds camera pixels).
A quantization-aware model (`keras_effnet.export.quantization_aware`, tf_keras) converts from
its inference function: its fake-quant ranges are kept, the representative images fill the rest.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterable, Iterator

import numpy as np

from keras_effnet.errors import InvalidArgument
from keras_effnet.export.bias_correction import bias_corrected
from keras_effnet.export.graph import (Traced, deployable, input_size, is_quantization_aware,
                                       using)

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
IO_DTYPES = ("float32", "uint8", "int8")


def calibration_images(representative_data: Any, shape: tuple[int, int, int],
                       steps: int) -> np.ndarray:
    """Normalise representative data (array, tf.data.Dataset, or data spec) to float32 images.

    Raises ValueError for empty data, a wrong image shape, or a non-numeric dtype.
    """
    if representative_data is None:
        raise InvalidArgument("quantize='int8' needs representative_data: a float array of "
                              f"images {shape}, a tf.data.Dataset of them, or a data spec like "
                              "'synthetic'")
    if isinstance(representative_data, str):
        from keras_effnet.data import examples

        return examples(representative_data, shape[0], steps, split="train")[0]
    if hasattr(representative_data, "take") and hasattr(representative_data, "element_spec"):
        batches = []
        for element in representative_data.take(steps).as_numpy_iterator():
            batch = element[0] if isinstance(element, tuple) else element
            batches.append(np.asarray(batch).reshape((-1, *np.shape(batch)[-3:])))
        images = np.concatenate(batches) if batches else np.zeros((0, *shape))
    else:
        images = np.asarray(representative_data)
    if images.dtype.kind not in "fiu":
        raise InvalidArgument(f"representative_data has dtype {images.dtype}; accepted: float or "
                              "integer pixels in [0, 255]")
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(shape):
        raise InvalidArgument(f"representative_data has shape {images.shape}; the model takes "
                              f"images of {shape} (batch, height, width, channels)")
    if len(images) == 0:
        raise InvalidArgument("representative_data is empty: give at least one image")
    return images[:steps].astype("float32")


def convert(model: Any, quantize: str = "none", representative_data: Any = None,
            calibration_steps: int = 100, io_dtype: str = "float32",
            bias_correction: bool = True) -> bytes:
    """Return the TFLite flatbuffer for `model` (see module docstring)."""
    return converted(model, quantize, representative_data, calibration_steps, io_dtype,
                     bias_correction)[0]


def converted(model: Any, quantize: str = "none", representative_data: Any = None,
              calibration_steps: int = 100, io_dtype: str = "float32",
              bias_correction: bool = True) -> tuple[bytes, dict[str, Any]]:
    """`convert`'s flatbuffer and what it did beyond converting: for int8, the bias
    correction's summary (`export/bias_correction.py`), {} otherwise."""
    with configured(model, quantize, representative_data, calibration_steps, io_dtype,
                    bias_correction) as conversion:
        return finished(conversion.converter.convert(), io_dtype), conversion.info


@dataclasses.dataclass
class Conversion:
    """A converter set up as `converted` sets it up (the one place for converter settings),
    valid inside `configured`'s block: `images` are the calibration images (int8, else None),
    `info` what was done beyond converting (the bias correction's summary)."""
    converter: Any
    images: np.ndarray | None
    info: dict[str, Any]
    quantization_aware: bool


@contextlib.contextmanager
def configured(model: Any, quantize: str = "none", representative_data: Any = None,
               calibration_steps: int = 100, io_dtype: str = "float32",
               bias_correction: bool = True) -> Iterator[Conversion]:
    """The converter of `model` for `quantize`, configured, with the SavedModel it reads
    alive for the block: `converted` converts with it, the layer report
    (`export/layer_report.py`) hands it to TensorFlow Lite's quantization debugger."""
    import tensorflow as tf

    if quantize not in QUANTIZE_MODES:
        raise InvalidArgument(f"quantize={quantize!r}; accepted: {', '.join(QUANTIZE_MODES)}")
    if io_dtype not in IO_DTYPES:
        raise InvalidArgument(f"io_dtype={io_dtype!r}; accepted: {', '.join(IO_DTYPES)}")
    if io_dtype != "float32" and quantize != "int8":
        raise InvalidArgument(f"io_dtype={io_dtype!r} needs quantize='int8' (got {quantize!r})")
    if not isinstance(bias_correction, bool):
        raise InvalidArgument(f"bias_correction={bias_correction!r}; accepted: True or False")
    quantization_aware = is_quantization_aware(model)
    if quantization_aware and quantize != "int8":
        raise InvalidArgument(f"a quantization-aware model converts with quantize='int8' only "
                              f"(got {quantize!r}); export the float model for the other modes")
    reference = model.model if isinstance(model, Traced) else model
    images = (calibration_images(representative_data, input_size(reference), calibration_steps)
              if quantize == "int8" else None)  # bad data fails before the slow trace
    if quantization_aware:  # a tf_keras model: its fake-quant ranges become the int8 ranges
        converter = _inference_converter(model)
        yield Conversion(_configure(converter, quantize, images, io_dtype), images, {}, True)
        return
    info: dict[str, Any] = {}
    values = None
    if quantize == "int8":
        info["bias_correction"] = None
        if bias_correction:  # a corrected copy of the deployment graph
            corrected, info["bias_correction"], values = bias_corrected(deployable(reference),
                                                                        images)
            if not isinstance(model, Traced):  # to be traced anyway: trace the copy
                model, values = corrected, None
    with using(model) as graph, graph.with_values(values) as saved_model:
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        yield Conversion(_configure(converter, quantize, images, io_dtype), images, info, False)


def _inference_converter(model: Any) -> Any:
    """The converter of a tf_keras model's inference function, with its variables (frozen by
    the converter) and the signature `from_keras_model` gives (input and output named as the
    model's). `from_keras_model` first saves a SavedModel of every layer's call functions:
    on a QAT model the same ops and outputs took 3x the time (BUILD_NOTES.md, export notes,
    "QAT conversion path")."""
    import tensorflow as tf

    module = tf.Module()
    module.model_variables = model.variables
    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name=model.input_names[0])
    module.serve = tf.function(lambda x: {model.output_names[0]: model(x, training=False)},
                               input_signature=[spec])
    return tf.lite.TFLiteConverter.from_concrete_functions(
        [module.serve.get_concrete_function()], module)


def finished(flatbuffer: bytes, io_dtype: str) -> bytes:
    """A converted flatbuffer as it is written: a uint8 input made to take pixels as they
    are (scale 1, zero point 0).

    The converter gives a uint8 input the range the calibration images spanned: on darker
    images (max 200, say) a scale of 0.78, so an app that feeds camera pixels as they are
    (MediaPipe Tasks does) would feed the wrong values. The uint8 input feeds only the
    QUANTIZE op that requantizes it to the int8 graph, so its own scale and zero point can be
    set to (1, 0) exactly: the QUANTIZE op then maps pixels onto the calibrated int8 range.
    """
    if io_dtype != "uint8":
        return flatbuffer
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    index = int(graph.inputs[0])
    tensor = graph.tensors[index]
    params = tensor.quantization
    if tensor.type != schema.TensorType.UINT8 or (
            float(params.scale[0]), int(params.zeroPoint[0])) == (1.0, 0):
        return flatbuffer
    consumers = [op for op in graph.operators if index in list(op.inputs)]
    kinds = {max(model.operatorCodes[op.opcodeIndex].builtinCode,
                 model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)
             for op in consumers}
    if kinds != {schema.BuiltinOperator.QUANTIZE}:
        raise RuntimeError(f"the uint8 input feeds {sorted(kinds)}, not only QUANTIZE: its "
                           "scale cannot be set to 1 exactly")
    params.scale = np.array([1.0], "float32")
    params.zeroPoint = np.array([0], "int64")
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _configure(converter: Any, quantize: str, images: np.ndarray | None, io_dtype: str) -> Any:
    import tensorflow as tf

    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        def representative() -> Iterable[list[np.ndarray]]:
            for image in images:
                yield [image[None]]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io_dtype != "float32":
            converter.inference_input_type = getattr(tf, io_dtype)
            converter.inference_output_type = getattr(tf, io_dtype)
    return converter
