"""Files the package writes: atomically, into folders that are checked first. Stdlib only.

Everything the package writes (models, reports, exported files, benchmark tables) goes to a
temporary name in the destination folder, then `os.replace` moves it into place in one step:
a crash never leaves a half-written file under the final name. Files are created by their
writers (not by `mkstemp`), so they get the user's umask like any other file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any, Iterator

from keras_effnet.errors import InvalidArgument, MissingFile, NotWritable


def check_writable_dir(path: str) -> str:
    """Return the folder `path` will be written into, or raise a clear error why it can't."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise MissingFile(f"output folder does not exist: {folder!r} (for {path!r})")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise NotWritable(f"output folder is not writable: {folder!r} (for {path!r})")
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
        raise InvalidArgument(f"model path {os.fspath(path)!r} must end in .keras")
    with atomic_path(path) as tmp:
        model.save(tmp)


def write_json(data: Any, path: str | os.PathLike) -> None:
    """Write JSON atomically (reports, summaries, configs)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True, default=str)
        f.write("\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary folder (beside `path`) that replaces `path` on success."""
    import shutil

    path = os.fspath(path)
    staged = tempfile.mkdtemp(prefix=".staged-", dir=check_writable_dir(path))
    try:
        yield staged
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(staged, path)
    finally:
        if os.path.exists(staged):
            shutil.rmtree(staged)
