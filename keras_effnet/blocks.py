"""The stems and the blocks, one function per block kind (`BLOCKS`), and the small
conv+BN+activation piece they are made of.

Each function takes the layers namespace (`keras.layers`, or `tf_keras.layers` for the
quantization-aware twin in `keras_effnet.export`) so one definition serves both. Layer names
follow keras.applications' EfficientNet (`block2a_expand_conv`, `block2a_se_reduce`, …): they
are the contract that lets its weight files load by name (other families' files load through
the name mapping in `keras_effnet.weights`). Activations are always
layers of their own (never fused into a conv): the same function, but quantizers see them.
"""

from __future__ import annotations

from typing import Any

from keras_effnet.schema import BlockConfig, ModelConfig

# Paper / reference initialisers, as config dicts that both Keras 3 and tf_keras accept.
CONV_INITIALIZER = {"class_name": "VarianceScaling",
                    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"}}
DENSE_INITIALIZER = {"class_name": "VarianceScaling",
                     "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"}}


def conv_bn(layers: Any, x: Any, config: ModelConfig, filters: int, kernel: int, name: str,
            stride: int = 1, activation: bool = True, padding: str = "same") -> Any:
    """k×k convolution (biased only where the base says so, as ResNet's), batch norm, and
    (optionally) the activation.

    Padding "same" pads like TensorFlow SAME (the extra pixel bottom/right at stride 2) for any
    input size, odd and unknown sizes included.
    """
    x = layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=config.conv_bias,
                      kernel_initializer=CONV_INITIALIZER, name=f"{name}_conv")(x)
    x = batch_norm(layers, x, config, f"{name}_bn")
    if activation:
        x = layers.Activation(config.activation, name=f"{name}_activation")(x)
    return x


def batch_norm(layers: Any, x: Any, config: ModelConfig, name: str) -> Any:
    sync = {"synchronized": True} if config.bn_synchronized else {}
    return layers.BatchNormalization(momentum=config.bn_momentum, epsilon=config.bn_epsilon,
                                     name=name, **sync)(x)


def depthwise_bn(layers: Any, x: Any, block: BlockConfig, config: ModelConfig) -> Any:
    """The k×k depthwise convolution of mbconv and separable blocks, its BN and activation
    (the conv named as the base says: `dwconv`, EfficientNetV2's `dwconv2`)."""
    prefix = block.name + "_"
    x = layers.DepthwiseConv2D(block.kernel, strides=block.stride, padding="same",
                               use_bias=config.conv_bias, depthwise_initializer=CONV_INITIALIZER,
                               name=prefix + config.depthwise_name)(x)
    x = batch_norm(layers, x, config, prefix + "bn")
    return layers.Activation(config.activation, name=prefix + "activation")(x)


def stem(layers: Any, x: Any, config: ModelConfig, taps: Any) -> Any:
    """"conv": k×k stride-2 conv, BN, activation. "conv_pool" (ResNet): symmetric zero padding,
    k×k stride-2 valid conv, BN, activation, zero padding 1, 3×3 stride-2 max pool, exactly as
    keras.applications pads them. Each stride-2 step is reported to `taps`."""
    k, filters = config.stem_kernel, config.stem_filters
    if config.stem == "conv_pool":
        x = layers.ZeroPadding2D(k // 2, name="stem_pad")(x)
        x = conv_bn(layers, x, config, filters, k, "stem", stride=2, padding="valid")
        taps.add(x, 2, "stem", filters)
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
        taps.add(x, 2, "stem_pool", filters)
        return x
    x = conv_bn(layers, x, config, filters, k, "stem", stride=2)
    taps.add(x, 2, "stem", filters)
    return x


def _drop_path_add(layers: Any, x: Any, shortcut: Any, block: BlockConfig) -> Any:
    """Stochastic depth (drop the residual branch per sample), then the residual add."""
    if block.drop_path_rate > 0:
        x = layers.Dropout(block.drop_path_rate, noise_shape=(None, 1, 1, 1),
                           name=block.name + "_drop")(x)
    return layers.Add(name=block.name + "_add")([x, shortcut])


def mbconv(layers: Any, x: Any, block: BlockConfig, config: ModelConfig) -> Any:
    """Mobile inverted bottleneck: expand 1×1, depthwise k×k, squeeze-excite, project 1×1
    (MobileNetV2's inverted residual when SE is off).

    Blocks with an identity skip drop their residual branch with probability `drop_path_rate`
    per sample (stochastic depth) before the add.
    """
    prefix, inputs, filters = block.name + "_", x, block.inner_filters
    if block.expand_ratio != 1:
        x = conv_bn(layers, x, config, filters, 1, prefix + "expand")
    x = depthwise_bn(layers, x, block, config)
    if block.se_filters:
        x = squeeze_excite(layers, x, block, config)
    x = conv_bn(layers, x, config, block.filters_out, 1, prefix + "project", activation=False)
    return _drop_path_add(layers, x, inputs, block) if block.has_skip else x


def fused_mbconv(layers: Any, x: Any, block: BlockConfig, config: ModelConfig) -> Any:
    """EfficientNetV2's Fused-MBConv: one k×k conv expands (and strides), optional SE, 1×1
    project; with expand_ratio 1 the k×k conv is the projection itself. Residual as mbconv."""
    prefix, inputs = block.name + "_", x
    if block.expand_ratio == 1:
        x = conv_bn(layers, x, config, block.filters_out, block.kernel, prefix + "project",
                    stride=block.stride)
        return _drop_path_add(layers, x, inputs, block) if block.has_skip else x
    x = conv_bn(layers, x, config, block.inner_filters, block.kernel, prefix + "expand",
                stride=block.stride)
    if block.se_filters:
        x = squeeze_excite(layers, x, block, config)
    x = conv_bn(layers, x, config, block.filters_out, 1, prefix + "project", activation=False)
    return _drop_path_add(layers, x, inputs, block) if block.has_skip else x


def squeeze_excite(layers: Any, x: Any, block: BlockConfig, config: ModelConfig) -> Any:
    """Squeeze (global average), reduce 1×1 + activation, expand 1×1 + sigmoid, excite (×)."""
    prefix = block.name + "_"
    se = layers.GlobalAveragePooling2D(keepdims=True, name=prefix + "se_squeeze")(x)
    for step, width, activation in (("reduce", block.se_filters, config.activation),
                                    ("expand", block.inner_filters, "sigmoid")):
        se = layers.Conv2D(width, 1, padding="same", kernel_initializer=CONV_INITIALIZER,
                           name=f"{prefix}se_{step}")(se)
        se = layers.Activation(activation, name=f"{prefix}se_{step}_activation")(se)
    return layers.Multiply(name=prefix + "se_excite")([x, se])


def separable(layers: Any, x: Any, block: BlockConfig, config: ModelConfig) -> Any:
    """MobileNetV1's depthwise-separable block: depthwise k×k + BN + activation, pointwise
    1×1 + BN + activation; no residual."""
    x = depthwise_bn(layers, x, block, config)
    return conv_bn(layers, x, config, block.filters_out, 1, block.name + "_project")


def bottleneck(layers: Any, x: Any, block: BlockConfig, config: ModelConfig) -> Any:
    """ResNet v1 bottleneck: 1×1 reduce (carrying the stride, as keras.applications), k×k,
    1×1 project to 4× the inner width; the shortcut is a strided 1×1 conv + BN on a stage's
    first block, the identity elsewhere; activation after the add."""
    prefix, inner = block.name + "_", block.inner_filters
    shortcut = x
    if block.skip == "projection":  # built first, as keras.applications does (layer order)
        shortcut = conv_bn(layers, x, config, block.filters_out, 1, prefix + "shortcut",
                           stride=block.stride, activation=False)
    x = conv_bn(layers, x, config, inner, 1, prefix + "reduce", stride=block.stride)
    x = conv_bn(layers, x, config, inner, block.kernel, block.name)
    x = conv_bn(layers, x, config, block.filters_out, 1, prefix + "project", activation=False)
    x = _drop_path_add(layers, x, shortcut, block)
    return layers.Activation(config.activation, name=prefix + "out")(x)


BLOCKS = {"mbconv": mbconv, "fused_mbconv": fused_mbconv, "separable": separable,
          "bottleneck": bottleneck}
