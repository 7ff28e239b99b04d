"""Atomic artifact writes: a crash never leaves a half-written file under the final name.

Everything the package writes (models, reports, exported files) goes to a temporary file in
the destination folder, then `os.replace` moves it into place in one step.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any, Iterator


def check_writable_dir(path: str) -> str:
    """Return the folder `path` will be written into, or raise a clear error why it can't."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"output folder does not exist: {folder!r} (for {path!r})")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"output folder is not writable: {folder!r} (for {path!r})")
    return folder


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path (same folder, same suffix) that becomes `path` on success."""
    path = os.fspath(path)
    folder = check_writable_dir(path)
    base = os.path.basename(path)
    suffix = ".weights.h5" if base.endswith(".weights.h5") else os.path.splitext(base)[1]
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    os.remove(tmp)  # writers (Keras, converters) create the file themselves
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_model(model: Any, path: str | os.PathLike) -> None:
    """Save a Keras model as `.keras`, atomically."""
    if not os.fspath(path).endswith(".keras"):
        raise ValueError(f"model path {os.fspath(path)!r} must end in .keras")
    with atomic_path(path) as tmp:
        model.save(tmp)


def write_json(data: Any, path: str | os.PathLike) -> None:
    """Write JSON atomically (reports, summaries, configs)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True, default=str)
        f.write("\n")


def load_model(path: str | os.PathLike, *, compile: bool = True) -> Any:
    """Load a `.keras` model saved by this package (safe mode: no arbitrary code runs).

    Plain `keras.saving.load_model` works too once `keras_effnet.model` is imported (that
    registers the `EfficientNet` class); this does the import and gives clear errors.
    """
    import zipfile

    import keras

    import keras_effnet.model  # noqa: F401  (registers EfficientNet)
    import keras_effnet.train  # noqa: F401  (registers the learning-rate schedule)

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file not found: {path!r}")
    if not path.endswith(".keras") or not zipfile.is_zipfile(path):
        raise ValueError(f"{path!r} is not a .keras model archive")
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as err:  # noqa: BLE001 - Keras raises many types for a bad archive
        raise ValueError(f"{path!r} could not be loaded as a Keras model: {err}") from None
