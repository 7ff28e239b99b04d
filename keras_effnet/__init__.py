"""keras_effnet: EfficientNet (Tan & Le, 2019) as a tool: build at any scale, train, export.

`scale` and `profile` are pure Python; `build` and the Keras pieces import TensorFlow on
first use, so resolving and profiling configs stays instant.
"""

import importlib.abc
import importlib.util
import sys
from typing import Any

from keras_effnet.assembly import BuildOptions
from keras_effnet.profile import LayerCost, Profile, feature_taps, profile
from keras_effnet.scaling import (ALPHA, BASES, BETA, GAMMA, VARIANTS, BaseNetwork, BlockConfig,
                                  ModelConfig, StageSpec, Variant, scale)

__version__ = "0.1.0"


_waiting = False  # the hook ran while keras_private was half-imported


def _register_with_keras() -> None:
    """Register our Keras classes (the model, its optimizers and schedule), so that
    `keras.saving.load_model("run/model.keras")` finds them after `import keras_effnet`.

    `keras_private` (which the model and optimizers import) imports Keras on its first line:
    imported before Keras, it sets this hook off half-made, and calls `_registration_ready`
    at its end instead."""
    global _waiting
    private = sys.modules.get("keras_effnet.keras_private")
    if private is not None and not getattr(private, "COMPLETE", False):
        _waiting = True
        return
    import keras_effnet.model  # noqa: F401  (registers EfficientNet)
    import keras_effnet.optim  # noqa: F401  (registers the optimizers and the schedule)


def _registration_ready() -> None:
    """Called at the end of `keras_private`: the registration it held back, if any."""
    global _waiting
    if _waiting:
        _waiting = False
        _register_with_keras()


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Registers our classes right after Keras itself is imported: `import keras_effnet`
    alone must not import TensorFlow (profiling stays instant), yet a model file must load
    whichever of the two the user imports first."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def then_register(module: Any) -> None:
                exec_module(module)
                _register_with_keras()

            spec.loader.exec_module = then_register
        return spec


if "keras" in sys.modules:
    _register_with_keras()
elif not any(isinstance(finder, _AfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AfterKeras())

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
