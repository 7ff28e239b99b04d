"""keras_effnet: EfficientNet (Tan & Le, 2019) as a tool: build at any scale, train, export.

`scale` and `profile` are pure Python; `build` and the Keras pieces import TensorFlow on
first use, so resolving and profiling configs stays instant.

The Keras classes register with Keras where they are defined (`keras_effnet.model`,
`keras_effnet.optim`). Load a saved model with `keras_effnet.load_model(path)`, or import
`keras_effnet.model` before plain `keras.saving.load_model(path)`: Keras imports a saved
class's module only for its own packages, and `import keras_effnet` alone imports no Keras.
"""

from keras_effnet.assembly import BuildOptions
from keras_effnet.profile import LayerCost, Profile, feature_taps, profile
from keras_effnet.scaling import (ALPHA, BASES, BETA, GAMMA, VARIANTS, BaseNetwork, BlockConfig,
                                  ModelConfig, StageSpec, Variant, scale)

__version__ = "0.1.0"


_LAZY = {"build": "model", "EfficientNet": "model", "load_weights": "weights",
         "load_model": "artifacts", "save_model": "files"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"keras_effnet.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'keras_effnet' has no attribute {name!r}")


__all__ = ["ALPHA", "BETA", "GAMMA", "BASES", "VARIANTS", "BaseNetwork", "BlockConfig",
           "BuildOptions", "EfficientNet", "LayerCost", "ModelConfig", "Profile", "StageSpec",
           "Variant", "build", "feature_taps", "load_model", "load_weights", "profile", "save_model",
           "scale"]
