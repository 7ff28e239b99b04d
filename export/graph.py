"""The graph every artifact is converted from: traced and saved once per model.

`traced(model)` rebuilds the model for deployment (float32 variables; the input normalisation
computed on image rows, see `RowRescaling`), exports it once as a SavedModel and hands that
to every converter: TFLite modes convert from it, ONNX from its frozen serving function. The
Keras model itself stays the reference that artifacts are verified against.

Example:
    >>> with traced(model) as graph:           # one trace + SavedModel for all three files
    ...     to_tflite(graph, "m.tflite")
    ...     to_tflite(graph, "m_int8.tflite", quantize="int8", representative_data=images)
    ...     to_onnx(graph, "m.onnx")
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import types
from typing import Any, Iterator

import numpy as np

from keras_effnet.errors import InvalidArgument


def float32_twin(model: Any) -> Any:
    """The same model with a float32 policy (weights copied); the model itself if it is one."""
    import keras

    from keras_effnet.model import EfficientNet

    if all(getattr(layer, "compute_dtype", "float32") == "float32" for layer in model.layers
           if layer.name != "image"):
        return model
    if not isinstance(model, EfficientNet):
        raise InvalidArgument("a mixed-precision model converts only when it is a keras_effnet "
                              "EfficientNet (rebuilt in float32 from its config)")
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("float32")
    try:
        twin = EfficientNet(model.effnet_config, model.build_options, name=model.name,
                            class_names=model.class_names)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    twin.set_weights(model.get_weights())
    return twin


def input_size(model: Any) -> tuple[int, int, int]:
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or None in shape:
        raise InvalidArgument(f"export needs a fixed input size; the model takes {shape}. Build it "
                              "with input_shape=(H, W, 3)")
    return shape  # type: ignore[return-value]


_ROW_RESCALING: dict[str, type] = {}


def row_rescaling(layers: Any) -> type:
    """`RowRescaling` for a layers namespace (`keras.layers`, or `tf_keras.layers` for QAT)."""
    key = layers.__name__ if hasattr(layers, "__name__") else repr(layers)
    if key in _ROW_RESCALING:
        return _ROW_RESCALING[key]
    import tensorflow as tf

    class RowRescaling(layers.Layer):
        """(x + offset / scale) · scale per channel, computed on (N, H, W·C) rows of the image.

        The same function as `Rescaling(scale, offset)`. A per-channel constant of 3 values
        broadcast over (N, H, W, 3) takes XNNPACK's slow broadcast path: in an int8 B0 at
        224 px its MUL and ADD cost ~0.6 ms of ~4 ms (BUILD_NOTES.md, "Latency"). Tiled to
        a row of W·3 values, the broadcast runs over rows, at ~0.03 ms.

        The addition comes first for int8: the sum then spans 255 pixel values, one int8 step
        per pixel, and Lite's (x − 127) / 128 reaches the stem exactly for whole pixels. The
        product first spanned [-1, 2] at 1.5 pixels per step (measured in the real Lite0).
        """

        def __init__(self, scale: Any, offset: Any, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.scale = [float(v) for v in np.broadcast_to(np.asarray(scale, "float32"), 3)]
            self.offset = [float(v) for v in np.broadcast_to(np.asarray(offset, "float32"), 3)]

        def call(self, x: Any) -> Any:
            height, width, channels = x.shape[1:]
            scale = np.float32(self.scale)
            shift = np.float32(self.offset) / scale
            if height is None or width is None:  # any size: the plain broadcast
                return (x + shift) * scale
            rows = tf.reshape(x, (-1, height, width * channels))
            rows = (rows + np.tile(shift, width)) * np.tile(scale, width)
            return tf.reshape(rows, (-1, height, width, channels))

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "scale": self.scale, "offset": self.offset}

    _ROW_RESCALING[key] = RowRescaling
    return RowRescaling


def deployment_layers(layers: Any) -> Any:
    """`layers` with `Rescaling` replaced by `RowRescaling` (the graph that is converted)."""
    namespace = types.SimpleNamespace(**{name: getattr(layers, name) for name in dir(layers)
                                         if not name.startswith("_")})
    namespace.Rescaling = row_rescaling(layers)
    return namespace


def deployable(model: Any) -> Any:
    """The graph to convert: a float32 keras_effnet model rebuilt with `RowRescaling` as its
    input normalisation (same weights, same function); any other model as it is."""
    import keras

    from keras_effnet.assembly import assemble
    from keras_effnet.model import EfficientNet

    model = float32_twin(model)
    if not (isinstance(model, EfficientNet) and model.build_options.include_preprocessing):
        return model
    input_size(model)
    assembled = assemble(model.effnet_config, model.build_options,
                         deployment_layers(keras.layers))
    twin = keras.Model(assembled.inputs, assembled.outputs, name=model.name)
    twin.set_weights(model.get_weights())
    return twin


def is_quantization_aware(model: Any) -> bool:
    """True for a tf_keras model holding TFMOT fake-quant wrappers (from `quantization_aware`)."""
    return type(model).__module__.startswith("tf_keras") and any(
        type(layer).__name__ == "QuantizeWrapperV2" for layer in getattr(model, "layers", []))


class Traced:
    """A model traced and saved once (`traced(model)`); every `to_*` call accepts it.

    `.model` is the float32 Keras model artifacts are verified against, `.saved_model` the
    folder of the one SavedModel export (removed by `close()` or on leaving a `with`).
    """

    def __init__(self, model: Any) -> None:
        self.model = float32_twin(model)
        input_size(self.model)
        self._graph = deployable(self.model)
        self._folder = tempfile.mkdtemp(prefix="effnet-savedmodel-")
        self.exports = 0
        try:
            self._graph.export(self._folder, format="tf_saved_model", verbose=False)
            self.exports += 1
        except BaseException:
            self.close()
            raise
        self._frozen: Any = None

    @property
    def saved_model(self) -> str:
        if self._folder is None:
            raise ValueError("this traced model was closed; trace the model again")
        return self._folder

    def frozen_graph(self) -> tuple[Any, str, list[tuple[str, str]]]:
        """(GraphDef, input tensor, [(output tensor, output name)]) of the serving function,
        variables frozen to constants."""
        if self._frozen is None:
            import tensorflow as tf
            from tensorflow.python.framework.convert_to_constants import (
                convert_variables_to_constants_v2)

            loaded = tf.saved_model.load(self.saved_model)  # alive while it is frozen
            function = loaded.signatures["serving_default"]
            names = sorted(function.structured_outputs)  # the order of function.outputs
            function = convert_variables_to_constants_v2(function)
            inputs = [t.name for t in function.inputs if t.dtype != tf.resource]
            if len(inputs) != 1:
                raise RuntimeError(f"the serving function takes {len(inputs)} inputs; expected 1")
            self._frozen = (function.graph.as_graph_def(), inputs[0],
                            list(zip([t.name for t in function.outputs], names)))
        return self._frozen

    @contextlib.contextmanager
    def with_values(self, values: dict[str, np.ndarray] | None) -> Iterator[str]:
        """The folder of a SavedModel that is this one with the variables named in `values`
        (Keras variable paths) holding those values: the same traced functions, only the
        checkpoint rewritten (0.1 s, where a trace of a changed copy of b0 takes 5.6 s).
        A bias-corrected int8 conversion reads it (`tflite.converted`). No values: this
        SavedModel itself."""
        if not values:
            yield self.saved_model
            return
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2, trackable_object_graph_pb2

        saved = saved_model_pb2.SavedModel()
        with open(os.path.join(self.saved_model, "saved_model.pb"), "rb") as f:
            saved.ParseFromString(f.read())
        reader = tf.train.load_checkpoint(os.path.join(self.saved_model, "variables",
                                                       "variables"))
        tracked = trackable_object_graph_pb2.TrackableObjectGraph()
        tracked.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
        keys: dict[str, list[str]] = {}  # a variable is tracked under more than one list
        for node, entry in zip(saved.meta_graphs[0].object_graph_def.nodes, tracked.nodes):
            if node.WhichOneof("kind") == "variable":
                keys.setdefault(node.variable.name, []).extend(
                    a.checkpoint_key for a in entry.attributes)
        tensors = {key: reader.get_tensor(key) for key in reader.get_variable_to_dtype_map()}
        for name, value in values.items():
            found = [tensors[k] for k in keys.get(name, [])]
            if not found or any(t.shape != value.shape or t.dtype != value.dtype
                                or not np.array_equal(t, found[0]) for t in found):
                raise RuntimeError(f"variable {name!r} {value.shape} is not one variable of "
                                   "the traced SavedModel")
            tensors.update({k: value for k in keys[name]})
        folder = tempfile.mkdtemp(prefix="effnet-savedmodel-")
        try:  # the fingerprint hashes the old checkpoint: left out (it is optional)
            shutil.copytree(self.saved_model, folder, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("variables", "fingerprint.pb"))
            names = sorted(tensors)
            tf.raw_ops.SaveV2(prefix=os.path.join(folder, "variables", "variables"),
                              tensor_names=names, shape_and_slices=[""] * len(names),
                              tensors=[tensors[k] for k in names])
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> "Traced":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def traced(model: Any) -> Traced:
    """Trace and save `model` once for several artifacts (use it in a `with` block)."""
    if isinstance(model, Traced):
        raise TypeError("the model is traced already: pass it to to_tflite / to_onnx as it is")
    return Traced(model)


@contextlib.contextmanager
def using(model: Any) -> Iterator[Traced]:
    """`model` itself when it is traced (the caller closes it), else a trace for this block."""
    if isinstance(model, Traced):
        yield model
    else:
        with Traced(model) as graph:
            yield graph
