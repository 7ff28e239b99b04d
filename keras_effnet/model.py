"""Assemble a `ModelConfig` into a Keras functional graph; `build()` is the one public entry.

Example:
    >>> import keras_effnet
    >>> model = keras_effnet.build("lite0", num_classes=10, input_shape=(96, 96, 3))
    >>> backbone = keras_effnet.build(phi=1, features_only=True)
    >>> [f["stride"] for f in backbone.feature_info]
    [2, 4, 8, 16, 32]
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Sequence

import keras

from keras_effnet.blocks import DENSE_INITIALIZER, conv_bn, mbconv
from keras_effnet.keras_private import DistributedTraining
from keras_effnet.scaling import (ALPHA, BETA, GAMMA, IMAGENET_MEAN, IMAGENET_STD, MIN_RESOLUTION,
                                  BaseNetwork, ModelConfig, _is_int, scale)

POOLINGS = (None, "avg", "max")


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
        if not _is_int(self.num_classes) or self.num_classes < 1:
            raise ValueError(f"num_classes={self.num_classes!r}; accepted: an integer >= 1")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r}; accepted: None, 'avg' or 'max'")
        if self.pooling is not None and (self.include_top or self.features_only):
            raise ValueError(f"pooling={self.pooling!r} applies only with include_top=False "
                             "and features_only=False (the classifier always average-pools)")
        if self.input_shape is not None:
            shape = tuple(self.input_shape)
            object.__setattr__(self, "input_shape", shape)
            spatial_ok = all(d is None or (_is_int(d) and d >= MIN_RESOLUTION) for d in shape[:2])
            if len(shape) != 3 or not spatial_ok or not _is_int(shape[2]) or shape[2] < 1:
                raise ValueError(f"input_shape={self.input_shape!r}; accepted: (height, width, "
                                 f"channels) with height and width >= {MIN_RESOLUTION} or None")
            if self.include_preprocessing and shape[2] != 3:
                raise ValueError(f"input_shape={shape!r}: the built-in preprocessing normalises 3 "
                                 "RGB channels; pass include_preprocessing=False for other inputs")
            if self.head == "classifier" and None in shape[:2]:
                raise ValueError(f"input_shape={shape!r}: a model with include_top=True needs a "
                                 "known spatial size; give (H, W, 3) or use include_top=False")

    @property
    def head(self) -> str:
        """'features' (one output per stride), 'classifier', or 'none' (feature map / pooled)."""
        if self.features_only:
            return "features"
        return "classifier" if self.include_top else "none"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def feature_taps(config: ModelConfig) -> list[dict[str, Any]]:
    """Where a backbone taps its features: the last block at each stride (2, 4, 8, 16, 32)."""
    taps, stride, last, channels = [], 2, "stem", config.stem_filters
    for block in config.blocks:
        if block.stride == 2:
            taps.append({"name": f"stride_{stride}", "stride": stride, "channels": channels,
                         "block": last})
            stride *= 2
        last, channels = block.name, block.filters_out
    taps.append({"name": f"stride_{stride}", "stride": stride, "channels": channels,
                 "block": last})
    return taps


def preprocessing_constants(kind: str) -> tuple[list[float], list[float]]:
    """Per-channel (scale, offset) mapping pixels in [0, 255] to the network's input range."""
    if kind == "lite":
        return [1 / 128] * 3, [-127 / 128] * 3
    return ([1 / (255 * s) for s in IMAGENET_STD],
            [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])


def assemble(config: ModelConfig, options: BuildOptions, layers: Any = keras.layers):
    """Return (inputs, outputs) of the functional graph, with any layers namespace."""
    shape = options.input_shape
    if shape is None:
        res = config.resolution if options.head == "classifier" else None
        shape = (res, res, 3)
    inputs = layers.Input(shape=shape, name="image")
    x = inputs
    if options.include_preprocessing:
        scale_, offset = preprocessing_constants(config.preprocessing)
        x = layers.Rescaling(scale_, offset, name="rescaling")(x)
    x = conv_bn(layers, x, config, config.stem_filters, 3, "stem", stride=2)
    tapped = {"stem": x}
    for block in config.blocks:
        x = mbconv(layers, x, block, config)
        tapped[block.name] = x
    if options.head == "features":
        return inputs, {t["name"]: tapped[t["block"]] for t in feature_taps(config)}
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
    return inputs, x


@keras.saving.register_keras_serializable(package="keras_effnet")
class EfficientNet(DistributedTraining, keras.Model):
    """A functional EfficientNet that carries its resolved config and saves/loads with it.

    `model.effnet_config` is the `ModelConfig`, `model.build_options` the `BuildOptions`; a
    `.keras` file reloads with `safe_mode=True` and no custom objects beyond this class.
    """

    def __init__(self, config: ModelConfig | dict, options: BuildOptions | dict | None = None,
                 **kwargs: Any) -> None:
        config = config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config)
        if options is None:
            options = BuildOptions()
        elif isinstance(options, dict):
            options = BuildOptions(**options)
        inputs, outputs = assemble(config, options)
        kwargs.setdefault("name", config.name)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.effnet_config = config
        self.build_options = options

    @property
    def feature_info(self) -> list[dict[str, Any]]:
        """Stride, channels and source block of each output of a `features_only` backbone."""
        return feature_taps(self.effnet_config) if self.build_options.features_only else []

    def get_config(self) -> dict[str, Any]:
        return {"config": self.effnet_config.to_dict(), "options": self.build_options.to_dict(),
                "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> "EfficientNet":
        return cls(**config)


def build(
    variant: str | ModelConfig | None = None,
    *,
    phi: float | None = None,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
    base: str | BaseNetwork | Sequence[Any] = "efficientnet",
    num_classes: int = 1000,
    include_top: bool = True,
    input_shape: tuple[int | None, int | None, int] | None = None,
    pooling: str | None = None,
    dropout_rate: float | None = None,
    drop_path_rate: float = 0.2,
    include_preprocessing: bool = True,
    features_only: bool = False,
    weights: str | os.PathLike | None = None,
    name: str | None = None,
    base_resolution: int | None = None,
    bn_momentum: float = 0.99,
    classifier_activation: str | None = "softmax",
    skip_head: bool = False,
    depth: float | None = None,
    width: float | None = None,
    resolution: float | None = None,
    drop_connect_rate: float | None = None,
) -> EfficientNet:
    """Build an EfficientNet: a released variant ("b0".."b7", "lite0".."lite4"), any φ, or a
    `ModelConfig` from `scale()`; or explicit `depth`/`width`/`resolution` multipliers of the
    base (`build(width=2.0)`: width-only scaling; see `scale`).

    Inputs are RGB pixels in [0, 255]; the model normalises them itself unless
    `include_preprocessing=False`. `input_shape=None` means the config's resolution with the
    classifier, any size without it. `features_only=True` returns a backbone whose outputs are a
    dict `stride_2 … stride_32` (see `model.feature_info`). `weights` is a path to a
    keras.applications-format file (`.h5`, `.weights.h5` or `.keras`) loaded by layer name;
    `skip_head=True` leaves the classifier freshly initialised (fine-tuning to new classes).

    Example:
        >>> model = build(phi=0.5, num_classes=10)
    """
    weights_path = None if weights is None else _check_weights_argument(weights)
    if isinstance(variant, ModelConfig):
        if phi is not None or (depth, width, resolution) != (None, None, None):
            raise ValueError("pass a ModelConfig, or phi / depth / width / resolution; "
                             "not both")
        config = variant
    else:
        config = scale(variant, phi=phi, alpha=alpha, beta=beta, gamma=gamma, base=base,
                       base_resolution=base_resolution, dropout_rate=dropout_rate,
                       drop_path_rate=drop_path_rate, drop_connect_rate=drop_connect_rate,
                       bn_momentum=bn_momentum,
                       depth=depth, width=width, resolution=resolution)
    options = BuildOptions(num_classes=num_classes, include_top=include_top,
                           input_shape=input_shape, pooling=pooling,
                           include_preprocessing=include_preprocessing,
                           features_only=features_only,
                           classifier_activation=classifier_activation)
    model = EfficientNet(config, options, **({"name": name} if name else {}))
    if weights_path is not None:
        from keras_effnet.weights import load_weights
        load_weights(model, weights_path, skip_head=skip_head)
    return model


def _check_weights_argument(weights: Any) -> str:
    if isinstance(weights, str) and weights.lower() == "imagenet":
        raise ValueError(
            "weights='imagenet' cannot be downloaded by keras_effnet (it fetches nothing at run "
            "time). Download keras.applications' file yourself (e.g. efficientnetb0.h5, or "
            "efficientnetb0_notop.h5 with include_top=False) and pass weights='/path/to/file.h5'")
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights={weights!r}; accepted: None or a path to a .h5, .weights.h5 "
                        "or .keras file")
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path!r}")
    return path
