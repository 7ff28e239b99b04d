"""Parameters, multiply-adds and activations, per layer and in total, counted as the paper
counts FLOPs; and the feature taps of a backbone.

MACs are the multiply-adds of convolutions, depthwise convolutions and dense layers (the paper's
"FLOPs"); batch norm, activations, pooling and additions are not counted. A `ModelConfig` is
profiled analytically without TensorFlow, so `profile(scale("b7"))` is instant; a built Keras
model (ours or any other, e.g. keras.applications) is profiled from its layers. Both come from
the one assembly walk, so they cannot disagree with the built graph.

Example:
    >>> from keras_effnet import profile, scale
    >>> p = profile(scale("b0"))
    >>> p.trainable_params, round(p.macs / 1e9, 2)
    (5288548, 0.39)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from keras_effnet.assembly import BuildOptions, assemble
from keras_effnet.errors import InvalidArgument, InvalidType
from keras_effnet.schema import ModelConfig


@dataclass(frozen=True)
class LayerCost:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    trainable_params: int
    macs: int
    activations: int = 0  # output elements of a conv / depthwise / dense layer


@dataclass(frozen=True)
class Profile:
    name: str
    resolution: tuple[int, int]
    layers: tuple[LayerCost, ...]

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def trainable_params(self) -> int:
        return sum(layer.trainable_params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def activations(self) -> int:
        """Output elements of all convolutions and dense layers: the size measure that
        predicts accelerator runtime better than MACs (Dollár et al., 2021)."""
        return sum(layer.activations for layer in self.layers)

    def table(self) -> str:
        rows = [f"{'layer':<28} {'kind':<16} {'output':<16} {'params':>10} {'MACs':>14}"]
        for layer in self.layers:
            shape = "x".join(str(d) for d in layer.output_shape)
            rows.append(f"{layer.name:<28} {layer.kind:<16} {shape:<16} "
                        f"{layer.params:>10,} {layer.macs:>14,}")
        rows.append(f"{'total':<62} {self.params:>10,} {self.macs:>14,}")
        return "\n".join(rows)


def profile(model_or_config: Any, *, num_classes: int = 1000, include_top: bool = True,
            resolution: int | tuple[int, int] | None = None) -> Profile:
    """Count parameters and MACs of a `ModelConfig` (analytically) or of a built Keras model.

    For a config, `num_classes`, `include_top` and `resolution` (default: the config's) describe
    the model to count; for a built model they are read from the model itself, whose spatial
    input size must be fixed. A config is counted by walking the one assembly
    (`keras_effnet.assembly`) with a namespace of counting layers: the layers that `build`
    would create, the same shapes, no TensorFlow.
    """
    if isinstance(model_or_config, ModelConfig):
        if resolution is None:
            resolution = model_or_config.resolution
        h, w = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
        counter = CountingLayers()
        assemble(model_or_config, BuildOptions(num_classes=num_classes, include_top=include_top,
                                               input_shape=(h, w, 3)), counter)
        return Profile(model_or_config.name, (h, w), tuple(counter.costs))
    if hasattr(model_or_config, "layers") and hasattr(model_or_config, "inputs"):
        return _profile_model(model_or_config)
    raise InvalidType(f"profile() takes a ModelConfig or a built Keras model; got "
                      f"{type(model_or_config).__name__}")


def feature_taps(config: ModelConfig) -> list[dict[str, Any]]:
    """Where a backbone taps its features: the last output at each stride (2, 4, …, 32), with
    its channels and source block; from the same walk that builds the graph."""
    return assemble(config, BuildOptions(features_only=True), CountingLayers()).features


class _Shape:
    """A symbolic tensor of the counting walk: its shape without the batch axis."""

    def __init__(self, shape: tuple) -> None:
        self.shape = tuple(shape)


def _out_size(size: int | None, kernel: int, stride: int, padding: str) -> int | None:
    if size is None:
        return None
    return -(-size // stride) if padding == "same" else (size - kernel) // stride + 1


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


class CountingLayers:
    """A layers namespace (the subset the assembly uses) whose layers record their output
    shape, parameters and multiply-adds into `costs` instead of building tensors."""

    def __init__(self) -> None:
        self.costs: list[LayerCost] = []

    def _record(self, name: str, kind: str, shape: tuple, params: int, trainable: int,
                macs: int = 0) -> _Shape:
        if params:
            elements = math.prod(d for d in shape if d is not None)
            self.costs.append(LayerCost(name, kind, shape, params, trainable, macs,
                                        elements if macs else 0))
        return _Shape(shape)

    def Input(self, shape: tuple, name: str) -> _Shape:
        return _Shape(shape)

    def Conv2D(self, filters: int, kernel_size: int, strides: int = 1, padding: str = "valid",
               use_bias: bool = True, name: str = "", depthwise: bool = False, **_: Any):
        def call(x: _Shape) -> _Shape:
            h, w, c_in = x.shape
            out = c_in if depthwise else filters
            shape = (_out_size(h, kernel_size, strides, padding),
                     _out_size(w, kernel_size, strides, padding), out)
            weights = kernel_size * kernel_size * (1 if depthwise else c_in) * out
            params = weights + (out if use_bias else 0)
            return self._record(name, "DepthwiseConv2D" if depthwise else "Conv2D", shape,
                                params, params, weights * (shape[0] or 0) * (shape[1] or 0))
        return call

    def DepthwiseConv2D(self, kernel_size: int, **kwargs: Any):
        return self.Conv2D(0, kernel_size, depthwise=True, **kwargs)

    def Dense(self, units: int, name: str = "", **_: Any):
        def call(x: _Shape) -> _Shape:
            weights = x.shape[-1] * units
            return self._record(name, "Dense", (units,), weights + units, weights + units,
                                weights)
        return call

    def BatchNormalization(self, name: str = "", **_: Any):
        def call(x: _Shape) -> _Shape:
            c = x.shape[-1]
            return self._record(name, "BatchNormalization", x.shape, 4 * c, 2 * c)
        return call

    def ZeroPadding2D(self, padding: Any, name: str = "", **_: Any):
        (top, bottom), (left, right) = (_pair(p) for p in _pair(padding))

        def call(x: _Shape) -> _Shape:
            h, w, c = x.shape
            return _Shape((None if h is None else h + top + bottom,
                           None if w is None else w + left + right, c))
        return call

    def MaxPooling2D(self, pool_size: int, strides: int, padding: str = "valid", **_: Any):
        def call(x: _Shape) -> _Shape:
            h, w, c = x.shape
            return _Shape((_out_size(h, pool_size, strides, padding),
                           _out_size(w, pool_size, strides, padding), c))
        return call

    def GlobalAveragePooling2D(self, keepdims: bool = False, **_: Any):
        return lambda x: _Shape((1, 1, x.shape[-1]) if keepdims else (x.shape[-1],))

    GlobalMaxPooling2D = GlobalAveragePooling2D

    def _same_shape(self, *_: Any, **__: Any):
        return lambda x: _Shape(x[0].shape if isinstance(x, list) else x.shape)

    Rescaling = Activation = Dropout = Add = Multiply = _same_shape


def _profile_model(model: Any) -> Profile:
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise InvalidArgument(f"profile() needs a model with a fixed spatial input size; this "
                              f"one takes {shape}. Build it with input_shape=(H, W, 3), or "
                              "profile its ModelConfig with resolution=... (pixels)")
    layers = []
    for layer in model.layers:
        params = int(sum(math.prod(v.shape) for v in layer.weights))
        if not params:
            continue
        trainable = int(sum(math.prod(v.shape) for v in layer.trainable_weights))
        out = tuple(int(d) for d in layer.output.shape[1:])
        kind = type(layer).__name__
        # A conv kernel is (kh, kw, c_in, c_out), a depthwise one (kh, kw, c, multiplier), a
        # dense one (in, out): each output pixel costs one multiply-add per kernel weight.
        macs = activations = 0
        if kind in ("Conv2D", "DepthwiseConv2D", "Dense"):
            macs = math.prod(layer.weights[0].shape) * math.prod(out[:-1])
            activations = math.prod(out)
        layers.append(LayerCost(layer.name, kind, out, params, trainable, int(macs),
                                int(activations)))
    return Profile(model.name, (int(shape[1]), int(shape[2])), tuple(layers))
