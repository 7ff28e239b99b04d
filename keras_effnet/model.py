"""The Keras model: `keras_effnet.assembly` walked with `keras.layers`; `build()` is the one
public entry.

Example:
    >>> import keras_effnet
    >>> model = keras_effnet.build("lite0", num_classes=10, input_shape=(96, 96, 3))
    >>> backbone = keras_effnet.build(phi=1, features_only=True)
    >>> [f["stride"] for f in backbone.feature_info]
    [2, 4, 8, 16, 32]
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from typing import Any, Sequence

import keras

from keras_effnet.assembly import BuildOptions, assemble
from keras_effnet.checks import fold_keywords, refuse_unknown, renamed_argument
from keras_effnet.errors import InvalidArgument, InvalidType, MissingFile
from keras_effnet.keras_private import TrainerFixes
from keras_effnet.profile import feature_taps  # noqa: F401  (re-exported)
from keras_effnet.scaling import scale, with_training
from keras_effnet.schema import ModelConfig

@keras.saving.register_keras_serializable(package="keras_effnet")
class EfficientNet(TrainerFixes, keras.Model):
    """A functional EfficientNet that carries its resolved config and saves/loads with it.

    `model.effnet_config` is the `ModelConfig`, `model.build_options` the `BuildOptions`,
    `model.class_names` the names of the classifier's outputs when known (training sets the
    data's, ImageNet weights ImageNet's); a `.keras` file keeps all three and reloads with
    `safe_mode=True` and no custom objects beyond this class.
    """

    def __init__(self, config: ModelConfig | dict, options: BuildOptions | dict | None = None,
                 class_names: Sequence[str] | None = None, **kwargs: Any) -> None:
        config = config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config)
        if options is None:
            options = BuildOptions()
        elif isinstance(options, dict):
            options = BuildOptions(**options)
        assembled = assemble(config, options, keras.layers)
        kwargs.setdefault("name", config.name)
        super().__init__(inputs=assembled.inputs, outputs=assembled.outputs, **kwargs)
        self.effnet_config = config
        self.build_options = options
        self._features = assembled.features
        self.class_names = class_names

    @property
    def class_names(self) -> list[str] | None:
        """Names of the classifier's outputs, in order; None when unknown."""
        return self._class_names

    @class_names.setter
    def class_names(self, names: Sequence[str] | None) -> None:
        if names is not None:
            names = [str(name) for name in names]
            classes = self.outputs[0].shape[-1] if len(self.outputs) == 1 else None
            if not self.build_options.include_top or classes != len(names):
                raise InvalidArgument(f"{len(names)} class names for a model with "
                                      f"{classes if self.build_options.include_top else 'no'} "
                                      "classifier outputs; they must agree")
        self._class_names = names

    @property
    def feature_info(self) -> list[dict[str, Any]]:
        """Stride, channels and source block of each output of a `features_only` backbone."""
        return [dict(f) for f in self._features] if self.build_options.features_only else []

    def get_config(self) -> dict[str, Any]:
        return {"config": self.effnet_config.to_dict(), "options": self.build_options.to_dict(),
                "class_names": self.class_names, "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> "EfficientNet":
        return cls(**config)


# The network's arguments are `scale`'s; these of them (and bn_synchronized) are training
# settings, which a `ModelConfig` takes too (`scaling.with_training`; drop_connect_rate is the
# deprecated name of drop_path_rate).
NETWORK = tuple(inspect.signature(scale).parameters)[1:]
TRAINING_SETTINGS = ("dropout_rate", "drop_path_rate", "bn_momentum", "drop_connect_rate")


def build(variant: str | ModelConfig | None = None, *, options: BuildOptions | None = None,
          weights: str | os.PathLike | None = None, skip_head: bool = False,
          name: str | None = None, **settings: Any) -> EfficientNet:
    """Build an EfficientNet: a released variant ("b0".."b7", "lite0".."lite4", EfficientNetV2's
    "v2-b0".."v2-b3", "v2-s", "v2-m", "v2-l"), any φ of a base (`base=`), explicit
    multipliers of the base, or a `ModelConfig` from `scale()`.

    The keywords come in three groups:
    - the network: `scale`'s arguments, which `build` passes on: `phi` (with `alpha`, `beta`,
      `gamma`), `base`, `base_resolution` (pixels), the multipliers `depth` / `width` /
      `resolution_multiplier` (`build(width=2.0)`: width-only scaling), `depth_rounding`
      (`build(base="efficientnetv2", depth=1.1, depth_rounding="ceil")` is V2-B1's network);
    - the input and the head, `options` (a `BuildOptions`), or its fields as keywords:
      `num_classes`, `include_top`, `input_shape`, `pooling`, `include_preprocessing`,
      `features_only`, `classifier_activation`;
    - training settings: `dropout_rate`, `drop_path_rate`, `bn_momentum`,
      `bn_synchronized`; given with a `ModelConfig` they replace its own
      (`scaling.with_training`), and are the only network keywords it takes.

    Inputs are RGB pixels in [0, 255]; the model normalises them itself unless
    `include_preprocessing=False`. `input_shape=None` means the config's resolution with the
    classifier, any size without it. `features_only=True` returns a backbone whose outputs are a
    dict `stride_2 … stride_32` (see `model.feature_info`). `weights` is "imagenet", or a path
    to a keras.applications-format file (`.h5`, `.weights.h5` or `.keras`) loaded by layer
    name, or a PyTorch EfficientNet checkpoint (`.pth`, `.safetensors`: timm's
    `tf_efficientnet_*`, efficientnet_pytorch, efficientnet_lite_pytorch; read without torch,
    see `keras_effnet.torch_weights`); `skip_head=True` leaves the classifier freshly
    initialised (fine-tuning to new classes).

    Example:
        >>> model = build(phi=0.5, num_classes=10)
    """
    options = fold_keywords(BuildOptions, options, settings, "options")
    network = {k: v for k in NETWORK if (v := settings.pop(k, None)) is not None}  # None: unset
    bn_synchronized = settings.pop("bn_synchronized", None)
    refuse_unknown("build", settings, [*list(inspect.signature(build).parameters)[:-1], *NETWORK,
                                       *(f.name for f in dataclasses.fields(BuildOptions)),
                                       "bn_synchronized"])
    imagenet = isinstance(weights, str) and weights.lower() == "imagenet"
    weights_path = None if weights is None or imagenet else _check_weights_argument(weights)
    if isinstance(variant, ModelConfig):
        training = {k: network.pop(k) for k in TRAINING_SETTINGS if k in network}
        if network:
            raise InvalidArgument(f"pass a ModelConfig or the network's arguments "
                                  f"({', '.join(sorted(network))}), not both")
        training["drop_path_rate"] = renamed_argument(
            "drop_connect_rate", training.pop("drop_connect_rate", None), "drop_path_rate",
            training.get("drop_path_rate"), None)
        config = with_training(variant, bn_synchronized=bn_synchronized, **training)
    else:
        config = with_training(scale(variant, **network), bn_synchronized=bn_synchronized)
    model = EfficientNet(config, options, **({"name": name} if name else {}))
    if imagenet:
        _load_imagenet(model, skip_head)
    elif weights_path is not None:
        from keras_effnet.weights import load_weights
        load_weights(model, weights_path, skip_head=skip_head)
    return model


def _load_imagenet(model: EfficientNet, skip_head: bool) -> None:
    """The released variant's ImageNet weights (`keras_effnet.pretrained`) and, with its
    1 000-class classifier, the ImageNet class names."""
    from keras_effnet import pretrained
    from keras_effnet.weights import load_weights

    options = model.build_options
    variant = pretrained.variant_of(model.effnet_config)
    head = options.include_top and not options.features_only
    if head and options.num_classes != 1000 and not skip_head:
        raise InvalidArgument(f"weights='imagenet' has a 1000-class classifier; num_classes="
                              f"{options.num_classes} needs skip_head=True (a fresh classifier)")
    names = pretrained.class_names() if head and not skip_head else None  # fail before fetching
    load_weights(model, pretrained.weights_file(variant, include_top=head),
                 skip_head=skip_head or not head)
    model.class_names = names


def _check_weights_argument(weights: Any) -> str:
    if not isinstance(weights, (str, os.PathLike)):
        raise InvalidType(f"weights={weights!r}; accepted: None or a path to a .h5, "
                          ".weights.h5, .keras, .pth or .safetensors file")
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise MissingFile(f"weights file not found: {path!r}")
    return path
