"""Parameters and multiply-adds, per layer and in total, counted as the paper counts FLOPs.

MACs are the multiply-adds of convolutions, depthwise convolutions and dense layers (the paper's
"FLOPs"); batch norm, activations, pooling and additions are not counted. A `ModelConfig` is
profiled analytically without TensorFlow, so `profile(scale("b7"))` is instant; a built Keras
model (ours or any other, e.g. keras.applications) is profiled from its layers.

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

from keras_effnet.scaling import ModelConfig


@dataclass(frozen=True)
class LayerCost:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    trainable_params: int
    macs: int


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
    input size must be fixed.
    """
    if isinstance(model_or_config, ModelConfig):
        return _profile_config(model_or_config, num_classes, include_top, resolution)
    if hasattr(model_or_config, "layers") and hasattr(model_or_config, "inputs"):
        return _profile_model(model_or_config)
    raise TypeError(f"profile() takes a ModelConfig or a built Keras model; got "
                    f"{type(model_or_config).__name__}")


def _profile_config(config: ModelConfig, num_classes: int, include_top: bool,
                    resolution: int | tuple[int, int] | None) -> Profile:
    if resolution is None:
        resolution = config.resolution
    h, w = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    layers: list[LayerCost] = []
    size = (h, w)

    def conv(name: str, kernel: int, c_in: int, c_out: int, stride: int = 1, bias: bool = False,
             depthwise: bool = False, spatial: tuple[int, int] | None = None) -> None:
        nonlocal size
        if spatial is None:
            size = (math.ceil(size[0] / stride), math.ceil(size[1] / stride))
            spatial = size
        weights = kernel * kernel * (1 if depthwise else c_in) * c_out
        params = weights + (c_out if bias else 0)
        layers.append(LayerCost(name, "DepthwiseConv2D" if depthwise else "Conv2D",
                                (*spatial, c_out), params, params, weights * spatial[0] * spatial[1]))

    def bn(name: str, channels: int) -> None:
        layers.append(LayerCost(name, "BatchNormalization", (*size, channels), 4 * channels,
                                2 * channels, 0))

    conv("stem_conv", 3, 3, config.stem_filters, stride=2)
    bn("stem_bn", config.stem_filters)
    for b in config.blocks:
        prefix, filters = b.name + "_", b.expanded_filters
        if b.expand_ratio != 1:
            conv(prefix + "expand_conv", 1, b.filters_in, filters)
            bn(prefix + "expand_bn", filters)
        conv(prefix + "dwconv", b.kernel, filters, filters, stride=b.stride, depthwise=True)
        bn(prefix + "bn", filters)
        if b.se_filters:
            conv(prefix + "se_reduce", 1, filters, b.se_filters, bias=True, spatial=(1, 1))
            conv(prefix + "se_expand", 1, b.se_filters, filters, bias=True, spatial=(1, 1))
        conv(prefix + "project_conv", 1, filters, b.filters_out)
        bn(prefix + "project_bn", b.filters_out)
    conv("top_conv", 1, config.stages[-1].filters_out, config.head_filters)
    bn("top_bn", config.head_filters)
    if include_top:
        dense = config.head_filters * num_classes
        layers.append(LayerCost("predictions", "Dense", (num_classes,), dense + num_classes,
                                dense + num_classes, dense))
    return Profile(config.name, (h, w), tuple(layers))


def _profile_model(model: Any) -> Profile:
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise ValueError(f"profile() needs a model with a fixed spatial input size; this one "
                         f"takes {shape}. Build it with input_shape=(H, W, 3), or profile its "
                         "ModelConfig with resolution=...")
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
        macs = 0
        if kind in ("Conv2D", "DepthwiseConv2D", "Dense"):
            macs = math.prod(layer.weights[0].shape) * math.prod(out[:-1])
        layers.append(LayerCost(layer.name, kind, out, params, trainable, int(macs)))
    return Profile(model.name, (int(shape[1]), int(shape[2])), tuple(layers))
