"""The one assembly: walk a `ModelConfig` (stem, every block by its kind, head) with any
layers namespace.

With `keras.layers` it builds the Keras 3 graph (`keras_effnet.model`); with `tf_keras.layers`
the quantization-aware twin (`keras_effnet.export`); with `keras_effnet.profile`'s counting
namespace it yields parameters, multiply-adds, activations and the feature taps without
TensorFlow. So counts, taps and graph can never disagree: they are the same walk.

Pure Python: this module imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from keras_effnet.blocks import BLOCKS, DENSE_INITIALIZER, conv_bn, stem
from keras_effnet.checks import check_int, is_int
from keras_effnet.errors import InvalidArgument
from keras_effnet.schema import IMAGENET_MEAN, IMAGENET_STD, MIN_RESOLUTION, ModelConfig

POOLINGS = (None, "avg", "max")
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)  # keras.applications' "caffe" mean, in RGB order


@dataclass(frozen=True)
class BuildOptions:
    """Everything about a built model that is not the network body: input, head, outputs."""

    num_classes: int = 1000
    include_top: bool = True
    input_shape: tuple[int | None, int | None, int] | None = None
    pooling: str | None = None
    include_preprocessing: bool = True
    features_only: bool = False
    classifier_activation: str | None = "softmax"

    def __post_init__(self) -> None:
        check_int("num_classes", self.num_classes, 1)
        if self.pooling not in POOLINGS:
            raise InvalidArgument(f"pooling={self.pooling!r}; accepted: None, 'avg' or 'max'")
        if self.pooling is not None and (self.include_top or self.features_only):
            raise InvalidArgument(f"pooling={self.pooling!r} applies only with "
                                  "include_top=False and features_only=False (the classifier "
                                  "always average-pools)")
        if self.input_shape is not None:
            shape = tuple(self.input_shape)
            object.__setattr__(self, "input_shape", shape)
            spatial_ok = all(d is None or (is_int(d) and d >= MIN_RESOLUTION) for d in shape[:2])
            if len(shape) != 3 or not spatial_ok or not is_int(shape[2]) or shape[2] < 1:
                raise InvalidArgument(f"input_shape={self.input_shape!r}; accepted: (height, "
                                      f"width, channels) with height and width >= "
                                      f"{MIN_RESOLUTION} or None")
            if self.include_preprocessing and shape[2] != 3:
                raise InvalidArgument(f"input_shape={shape!r}: the built-in preprocessing "
                                      "normalises 3 RGB channels; pass "
                                      "include_preprocessing=False for other inputs")

    @property
    def head(self) -> str:
        """'features' (one output per stride), 'classifier', or 'none' (feature map / pooled)."""
        if self.features_only:
            return "features"
        return "classifier" if self.include_top else "none"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# What each preprocessing kind computes, in words (export metadata, summaries).
PREPROCESSING_FORMULAS = {"imagenet": "(x / 255 - ImageNet mean) / ImageNet std",
                          "lite": "(x - 127) / 128", "efficientnetv2": "x / 128 - 1",
                          "tf": "x / 127.5 - 1", "caffe": "x - ImageNet mean (RGB, 0..255)"}


def preprocessing_constants(kind: str) -> tuple[list[float], list[float]]:
    """Per-channel (scale, offset) mapping RGB pixels in [0, 255] to the network's input range.

    "imagenet": (x/255 − mean)/std (EfficientNet, EfficientNetV2-B0..B3); "lite": (x − 127)/128
    (EfficientNet-Lite); "efficientnetv2": x/128 − 1 (EfficientNetV2-S/M/L); "tf": x/127.5 − 1
    (MobileNets); "caffe": x − mean (ResNet-50; keras.applications also swaps RGB to BGR, which
    `keras_effnet.weights` folds into the stem kernel of its files instead).
    """
    if kind == "lite":
        return [1 / 128] * 3, [-127 / 128] * 3
    if kind == "efficientnetv2":
        return [1 / 128] * 3, [-1.0] * 3
    if kind == "tf":
        return [1 / 127.5] * 3, [-1.0] * 3
    if kind == "caffe":
        return [1.0] * 3, [-m for m in CAFFE_MEAN_RGB]
    return ([1 / (255 * s) for s in IMAGENET_STD],
            [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])


class Taps:
    """Records, as the walk goes, the last output at each stride (2, 4, 8, …): the feature
    pyramid of a backbone. Each entry: name `stride_<s>`, stride, channels, source block."""

    def __init__(self) -> None:
        self.stride, self.last, self.found = 1, None, []
        self.tensors: dict[str, Any] = {}

    def add(self, x: Any, stride: int, block: str, channels: int) -> None:
        if stride == 2 and self.last is not None:
            self._emit()
        self.stride *= stride
        self.last = (x, block, channels)

    def finish(self) -> list[dict[str, Any]]:
        self._emit()
        return self.found

    def _emit(self) -> None:
        x, block, channels = self.last
        name = f"stride_{self.stride}"
        self.found.append({"name": name, "stride": self.stride, "channels": channels,
                           "block": block})
        self.tensors[name] = x


@dataclass
class Assembled:
    inputs: Any
    outputs: Any
    features: list[dict[str, Any]]  # the taps (see `Taps`), whatever the head


def assemble(config: ModelConfig, options: BuildOptions, layers: Any) -> Assembled:
    """Walk the config once with the given layers namespace: input, preprocessing, stem, each
    block by its kind, then the head that `options` asks for."""
    shape = options.input_shape
    if shape is None:
        res = config.resolution if options.head == "classifier" else None
        shape = (res, res, 3)
    inputs = layers.Input(shape=shape, name="image")
    x = inputs
    if options.include_preprocessing:
        scale_, offset = preprocessing_constants(config.preprocessing)
        x = layers.Rescaling(scale_, offset, name="rescaling")(x)
    taps = Taps()
    x = stem(layers, x, config, taps)
    for block in config.blocks:
        x = BLOCKS[block.kind](layers, x, block, config)
        taps.add(x, block.stride, block.name, block.filters_out)
    features = taps.finish()
    if options.head == "features":
        return Assembled(inputs, dict(taps.tensors), features)
    if config.head_filters:
        x = conv_bn(layers, x, config, config.head_filters, 1, "top")
    if options.head == "classifier":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if config.dropout_rate > 0:
            x = layers.Dropout(config.dropout_rate, name="top_dropout")(x)
        x = layers.Dense(options.num_classes, kernel_initializer=DENSE_INITIALIZER,
                         name="predictions")(x)
        # float32 so that mixed-precision training gets a float32 softmax / loss.
        x = layers.Activation(options.classifier_activation or "linear", dtype="float32",
                              name="predictions_activation")(x)
    elif options.pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif options.pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return Assembled(inputs, x, features)
