"""The MBConv block and the small conv+BN+activation pieces every EfficientNet is made of.

Each function takes the layers namespace (`keras.layers`, or `tf_keras.layers` for the
quantization-aware twin in `keras_effnet.export`) so one definition serves both. Layer names
follow keras.applications (`block2a_expand_conv`, `block2a_se_reduce`, …): they are the
contract that lets keras.applications weight files load by name. Activations are always
layers of their own (never fused into a conv): the same function, but quantizers see them.
"""

from __future__ import annotations

from typing import Any

from keras_effnet.scaling import BlockConfig, ModelConfig

# Paper / reference initialisers, as config dicts that both Keras 3 and tf_keras accept.
CONV_INITIALIZER = {"class_name": "VarianceScaling",
                    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"}}
DENSE_INITIALIZER = {"class_name": "VarianceScaling",
                     "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"}}


def conv_bn(layers: Any, x: Any, config: ModelConfig, filters: int, kernel: int, name: str,
            stride: int = 1, activation: bool = True, bn_name: str | None = None) -> Any:
    """1×1 or k×k convolution without bias, batch norm, and (optionally) the activation.

    Stride-2 convolutions use padding "same", which pads like TensorFlow SAME (the extra pixel
    bottom/right) for any input size, odd and unknown sizes included.
    """
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                      kernel_initializer=CONV_INITIALIZER, name=f"{name}_conv")(x)
    x = batch_norm(layers, x, config, bn_name or f"{name}_bn")
    if activation:
        x = layers.Activation(config.activation, name=f"{name}_activation")(x)
    return x


def batch_norm(layers: Any, x: Any, config: ModelConfig, name: str) -> Any:
    sync = {"synchronized": True} if config.bn_synchronized else {}
    return layers.BatchNormalization(momentum=config.bn_momentum, epsilon=config.bn_epsilon,
                                     name=name, **sync)(x)


def mbconv(layers: Any, x: Any, block: BlockConfig, config: ModelConfig) -> Any:
    """Mobile inverted bottleneck: expand 1×1, depthwise k×k, squeeze-excite, project 1×1.

    Blocks with an identity skip drop their residual branch with probability `drop_path_rate`
    per sample (stochastic depth) before the add.
    """
    prefix, inputs, filters = block.name + "_", x, block.expanded_filters
    if block.expand_ratio != 1:
        x = conv_bn(layers, x, config, filters, 1, prefix + "expand")
    x = layers.DepthwiseConv2D(block.kernel, strides=block.stride, padding="same",
                               use_bias=False, depthwise_initializer=CONV_INITIALIZER,
                               name=prefix + "dwconv")(x)
    x = batch_norm(layers, x, config, prefix + "bn")
    x = layers.Activation(config.activation, name=prefix + "activation")(x)
    if block.se_filters:
        se = layers.GlobalAveragePooling2D(keepdims=True, name=prefix + "se_squeeze")(x)
        for step, width, activation in (("reduce", block.se_filters, config.activation),
                                        ("expand", filters, "sigmoid")):
            se = layers.Conv2D(width, 1, padding="same", kernel_initializer=CONV_INITIALIZER,
                               name=f"{prefix}se_{step}")(se)
            se = layers.Activation(activation, name=f"{prefix}se_{step}_activation")(se)
        x = layers.Multiply(name=prefix + "se_excite")([x, se])
    x = conv_bn(layers, x, config, block.filters_out, 1, prefix + "project", activation=False)
    if block.has_skip:
        if block.drop_path_rate > 0:
            x = layers.Dropout(block.drop_path_rate, noise_shape=(None, 1, 1, 1),
                               name=prefix + "drop")(x)
        x = layers.Add(name=prefix + "add")([x, inputs])
    return x
