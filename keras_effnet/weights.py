"""Load keras.applications-format EfficientNet weight files into a model, by layer name.

Three file kinds are read:
- legacy HDF5 (`.h5`, `.hdf5`): keras.applications' released files and `save_weights` of
  Keras 2 / `model.save("x.h5")`; weights are stored under layer names.
- Keras 3 `.weights.h5`: weights are stored by position (`layers/conv2d_3/vars/0`: the 4th
  Conv2D); they are matched to the model's layers of the same class in the same order, which
  is keras.applications' order because the graphs are built in the same order.
- `.keras` model archives (loaded with `safe_mode=True`, then read layer by layer).

Every mismatch is reported before anything is assigned: the model is left untouched.
"""

from __future__ import annotations

import os
import re
import zipfile
from typing import Any

import numpy as np

HEAD = "predictions"


def load_weights(model: Any, path: str | os.PathLike, *, skip_head: bool = False) -> None:
    """Assign the file's weights to `model`'s layers of the same name (or position, see above).

    `skip_head=True` leaves the classifier (`predictions`) as initialised, for a new label set.
    Raises FileNotFoundError / ValueError naming the file and the first mismatches.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path!r}")
    stored = read_weights(path, model)
    missing, mismatched, assign = [], [], []
    for layer in model.layers:
        if not layer.weights or (skip_head and layer.name == HEAD):
            continue
        arrays = stored.get(layer.name)
        expected = [tuple(v.shape) for v in layer.weights]
        if arrays is None:
            missing.append(layer.name)
        elif [a.shape for a in arrays] != expected:
            mismatched.append(f"{layer.name}: file {[a.shape for a in arrays]} vs model {expected}")
        else:
            assign.append((layer, arrays))
    if HEAD in (missing + [m.split(":")[0] for m in mismatched]):
        raise ValueError(
            f"{path!r}: the classifier 'predictions' does not fit this model "
            f"({'absent from the file' if HEAD in missing else _first(mismatched, HEAD)}). "
            "For a different label set pass skip_head=True (the classifier is left freshly "
            "initialised); for a file without the top build with include_top=False")
    if missing or mismatched:
        raise ValueError(
            f"{path!r} holds a different architecture than {model.name!r}: "
            f"{len(missing)} layer(s) absent from the file (e.g. {missing[:3]}), "
            f"{len(mismatched)} with other shapes (e.g. {mismatched[:2]}). "
            "Build the variant the file was saved from (same width, depth and base)")
    for layer, arrays in assign:
        layer.set_weights(arrays)


def _first(items: list[str], name: str) -> str:
    return next(item for item in items if item.startswith(name + ":"))


def read_weights(path: str, model: Any) -> dict[str, list[np.ndarray]]:
    """Map layer name -> weight arrays for any of the three file kinds."""
    try:
        if path.endswith(".keras"):
            return _read_keras_archive(path)
        import h5py

        with h5py.File(path, "r") as f:
            if "layers" in f and "layer_names" not in f.attrs:
                return _read_positional(f["layers"], model)
            group = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in group.attrs:
                raise ValueError("no 'layer_names' attribute and no 'layers' group")
            return {_text(name): [np.asarray(group[_text(name)][_text(w)])
                                  for w in group[_text(name)].attrs["weight_names"]]
                    for name in group.attrs["layer_names"]}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path!r} is not a readable Keras weights file (.h5, .weights.h5 or "
                         f".keras): {err}") from None


def _read_keras_archive(path: str) -> dict[str, list[np.ndarray]]:
    import keras  # the archive's classes are registered: its model is built (keras_effnet.model)

    source = keras.saving.load_model(path, compile=False, safe_mode=True)
    return {layer.name: [np.asarray(v) for v in layer.weights]
            for layer in source.layers if layer.weights}


def _read_positional(group: Any, model: Any) -> dict[str, list[np.ndarray]]:
    """Keras 3 keys each layer by class and position: the n-th Conv2D is `conv2d_n`."""
    seen: dict[str, int] = {}
    result = {}
    for layer in model.layers:
        key = _snake_case(type(layer).__name__)
        count = seen.get(key, -1) + 1
        seen[key] = count
        stored_key = key if count == 0 else f"{key}_{count}"
        if layer.weights and stored_key in group and "vars" in group[stored_key]:
            variables = group[stored_key]["vars"]
            result[layer.name] = [np.asarray(variables[str(i)]) for i in range(len(variables))]
    return result


def _snake_case(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
