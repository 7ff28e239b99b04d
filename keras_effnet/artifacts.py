"""Load `.keras` models written by this package (safe mode, clear errors).

Writing lives in `keras_effnet.files` (atomic, stdlib only); `save_model` is re-exported here.
"""

from __future__ import annotations

import os
from typing import Any

from keras_effnet.errors import InvalidArgument, MissingFile
from keras_effnet.files import save_model

__all__ = ["load_model", "save_model"]


def load_model(path: str | os.PathLike, *, compile: bool = True) -> Any:
    """Load a `.keras` model saved by this package (safe mode: no arbitrary code runs).

    Plain `keras.saving.load_model` works too once `keras_effnet.model` is imported (that
    registers the `EfficientNet` class; `keras_effnet.optim` registers the optimizers and
    schedule a compiled file holds): `import keras_effnet` alone imports no Keras, so it
    registers nothing. This does both imports and gives clear errors.
    """
    import zipfile

    import keras

    import keras_effnet.model  # noqa: F401  (registers EfficientNet)
    import keras_effnet.optim  # noqa: F401  (registers the schedule and optimizers)

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingFile(f"model file not found: {path!r}")
    if not path.endswith(".keras") or not zipfile.is_zipfile(path):
        raise InvalidArgument(f"{path!r} is not a .keras model archive")
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as err:  # noqa: BLE001 - Keras raises many types for a bad archive
        raise InvalidArgument(f"{path!r} could not be loaded as a Keras model: {err}") from None
