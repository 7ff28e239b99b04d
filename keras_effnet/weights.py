"""Load keras.applications-format weight files into a model, by layer name.

EfficientNet files load by name as they are (our layer names are keras.applications'). The
files of MobileNet, MobileNetV2 and ResNet50 load through `KERAS_APPLICATIONS_NAMES`, a
documented mapping from our layer names to theirs:
- mobilenet_v1: `stem_*` → `conv1*`; block k's `dwconv`/`bn`/`project_conv`/`project_bn` →
  `conv_dw_k`/`conv_dw_k_bn`/`conv_pw_k`/`conv_pw_k_bn`; `predictions` (Dense) ← `conv_preds`
  (their 1×1 conv classifier, kernel reshaped).
- mobilenet_v2: `stem_*` → `Conv1`/`bn_Conv1`; block k's `expand_conv`, `expand_bn`,
  `dwconv`, `bn`, `project_conv`, `project_bn` → `block_k_expand`, `_expand_BN`,
  `_depthwise`, `_depthwise_BN`, `_project`, `_project_BN` (block 0: `expanded_conv_…`);
  `top_*` → `Conv_1`/`Conv_1_bn`.
- resnet50: `stem_*` → `conv1_*`; block `block{s}{j}`'s `shortcut`, `reduce`, (k×k),
  `project` convs and BNs → `conv{s+1}_block{j}_0`, `_1`, `_2`, `_3`. keras.applications feeds
  ResNet50 BGR pixels; our model takes RGB, so the stem kernel's input channels are reversed
  on loading: the same function of the same RGB image.

PyTorch EfficientNet checkpoints (`.pth`, `.safetensors`: timm, efficientnet_pytorch,
efficientnet_lite_pytorch) are read without torch by `keras_effnet.torch_weights`; every
tensor must find its layer (the leftovers are reported).

Three Keras file kinds are read:
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

from keras_effnet.errors import InvalidArgument, MissingFile
from keras_effnet.torch_weights import is_torch_file, read_torch_weights

HEAD = "predictions"
# Layer names that only one keras.applications family's files hold.
SIGNATURES = {"conv1_conv": "resnet50", "conv_dw_1": "mobilenet_v1",
              "expanded_conv_depthwise": "mobilenet_v2", "block1a_dwconv": "efficientnet",
              "stem_conv": "keras_effnet"}


def _reshape_dense(arrays: list[np.ndarray]) -> list[np.ndarray]:
    return [arrays[0].reshape(arrays[0].shape[-2:]), *arrays[1:]]


def _bgr_to_rgb(arrays: list[np.ndarray]) -> list[np.ndarray]:
    return [arrays[0][:, :, ::-1, :], *arrays[1:]]


def _mobilenet_v1(blocks: Any) -> dict[str, Any]:
    names = {"stem_conv": "conv1", "stem_bn": "conv1_bn",
             HEAD: ("conv_preds", "Conv2D", _reshape_dense)}
    for k, block in enumerate(blocks, start=1):
        for ours, kind, bn in (("dwconv", "dw", ""), ("bn", "dw", "_bn"),
                               ("project_conv", "pw", ""), ("project_bn", "pw", "_bn")):
            names[f"{block.name}_{ours}"] = f"conv_{kind}_{k}{bn}"
    return names


def _mobilenet_v2(blocks: Any) -> dict[str, Any]:
    names = {"stem_conv": "Conv1", "stem_bn": "bn_Conv1", "top_conv": "Conv_1",
             "top_bn": "Conv_1_bn"}
    for k, block in enumerate(blocks):
        prefix = f"block_{k}" if k else "expanded_conv"
        for ours, theirs in (("expand_conv", "expand"), ("expand_bn", "expand_BN"),
                             ("dwconv", "depthwise"), ("bn", "depthwise_BN"),
                             ("project_conv", "project"), ("project_bn", "project_BN")):
            names[f"{block.name}_{ours}"] = f"{prefix}_{theirs}"
    return names


def _resnet50(blocks: Any) -> dict[str, Any]:
    names = {"stem_conv": ("conv1_conv", "Conv2D", _bgr_to_rgb), "stem_bn": "conv1_bn"}
    stage, index = None, 0
    for block in blocks:
        index = index + 1 if block.skip != "projection" else 1  # a stage starts projecting
        stage = (stage or 1) + (block.skip == "projection")
        prefix = f"conv{stage}_block{index}"
        for ours, theirs in (("shortcut_", "0"), ("reduce_", "1"), ("", "2"), ("project_", "3")):
            for part in ("conv", "bn"):
                names[f"{block.name}_{ours}{part}"] = f"{prefix}_{theirs}_{part}"
    return names


# base -> function of the config's blocks -> {our name: their name, or (name, class, transform)}
KERAS_APPLICATIONS_NAMES = {"mobilenet_v1": _mobilenet_v1, "mobilenet_v2": _mobilenet_v2,
                            "resnet50": _resnet50}


def foreign_names(model: Any) -> dict[str, tuple[str, str | None, Any]]:
    """{our layer name: (keras.applications name, its class if not ours, weight transform)}."""
    config = getattr(model, "effnet_config", None)
    make = KERAS_APPLICATIONS_NAMES.get(getattr(config, "base", None))
    if make is None:
        return {}
    return {ours: theirs if isinstance(theirs, tuple) else (theirs, None, None)
            for ours, theirs in make(config.blocks).items()}


def file_family(stored: dict[str, Any]) -> str | None:
    """The keras.applications family (or keras_effnet) whose layer names a file holds."""
    return next((family for name, family in SIGNATURES.items() if name in stored), None)


def load_weights(model: Any, path: str | os.PathLike, *, skip_head: bool = False) -> None:
    """Assign the file's weights to `model`'s layers of the same name (or position, see above).

    `skip_head=True` leaves the classifier (`predictions`) as initialised, for a new label set.
    Raises FileNotFoundError / ValueError naming the file and the first mismatches.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingFile(f"weights file not found: {path!r}")
    mapping = foreign_names(model)
    if is_torch_file(path):
        stored, leftovers = read_torch_weights(path, model)
    else:
        stored, leftovers = read_weights(path, model, mapping), []
    missing, mismatched, assign = [], [], []
    for layer in model.layers:
        if not layer.weights or (skip_head and layer.name == HEAD):
            continue
        arrays = stored.get(layer.name)
        if arrays is None and layer.name in mapping:
            theirs, _, transform = mapping[layer.name]
            arrays = stored.get(theirs)
            if arrays is not None and transform is not None:
                arrays = transform(arrays)
        expected = [tuple(v.shape) for v in layer.weights]
        if arrays is None:
            missing.append(layer.name)
        elif [a.shape for a in arrays] != expected:
            mismatched.append(f"{layer.name}: file {[a.shape for a in arrays]} vs model {expected}")
        else:
            assign.append((layer, arrays))
    base = getattr(getattr(model, "effnet_config", None), "base", None)
    family = file_family(stored)
    if (missing or mismatched) and family not in (None, "keras_effnet", base) and not (
            family == "efficientnet" and base in ("lite", "custom")):
        raise InvalidArgument(
            f"{path!r} holds keras.applications {family} weights, but {model.name!r} is a "
            f"{base} network: build it with base={family!r}"
            + ("" if family == "efficientnet" else " (phi=0)"))
    if HEAD in (missing + [m.split(":")[0] for m in mismatched]):
        raise InvalidArgument(
            f"{path!r}: the classifier 'predictions' does not fit this model "
            f"({'absent from the file' if HEAD in missing else _first(mismatched, HEAD)}). "
            "For a different label set pass skip_head=True (the classifier is left freshly "
            "initialised); for a file without the top build with include_top=False")
    if missing or mismatched or leftovers:
        raise InvalidArgument(
            f"{path!r} holds a different architecture than {model.name!r}: "
            f"{len(missing)} layer(s) absent from the file (e.g. {missing[:3]}), "
            f"{len(mismatched)} with other shapes (e.g. {mismatched[:2]})"
            + (f", {len(leftovers)} tensor(s) no layer takes (e.g. {leftovers[:3]})"
               if leftovers else "")
            + ". Build the variant the file was saved from (same width, depth and base)")
    for layer, arrays in assign:
        layer.set_weights(arrays)


def _first(items: list[str], name: str) -> str:
    return next(item for item in items if item.startswith(name + ":"))


def read_weights(path: str, model: Any,
                 mapping: dict[str, tuple[str, str | None, Any]] | None = None,
                 ) -> dict[str, list[np.ndarray]]:
    """Map layer name -> weight arrays for any of the three file kinds (`mapping`: see
    `foreign_names`; a positional file's layers are counted by the class it names)."""
    try:
        if path.endswith(".keras"):
            return _read_keras_archive(path)
        import h5py

        with h5py.File(path, "r") as f:
            if "layers" in f and "layer_names" not in f.attrs:
                return _read_positional(f["layers"], model, mapping or {})
            group = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in group.attrs:
                raise InvalidArgument("no 'layer_names' attribute and no 'layers' group")
            stored = {_text(name): [np.asarray(group[_text(name)][_text(w)])
                                    for w in group[_text(name)].attrs["weight_names"]]
                      for name in group.attrs["layer_names"]}
            return {name: arrays for name, arrays in stored.items() if arrays}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise InvalidArgument(f"{path!r} is not a readable Keras weights file (.h5, .weights.h5 or "
                              f".keras): {err}") from None


def _read_keras_archive(path: str) -> dict[str, list[np.ndarray]]:
    import keras  # the archive's classes are registered: its model is built (keras_effnet.model)

    source = keras.saving.load_model(path, compile=False, safe_mode=True)
    return {layer.name: [np.asarray(v) for v in layer.weights]
            for layer in source.layers if layer.weights}


def _read_positional(group: Any, model: Any,
                     mapping: dict[str, tuple[str, str | None, Any]]) -> dict[str, list[np.ndarray]]:
    """Keras 3 keys each layer by class and position: the n-th Conv2D is `conv2d_n`. A layer
    whose keras.applications counterpart has another class (MobileNet's conv classifier) is
    counted under that class when the file has none of ours."""
    if any(transform is _bgr_to_rgb for _, _, transform in mapping.values()):
        raise InvalidArgument("a .weights.h5 file stores weights by position only, which cannot "
                              "tell keras.applications' BGR ResNet50 from an RGB one; load its "
                              ".h5 or .keras file (by name) instead")
    seen: dict[str, int] = {}
    result = {}
    for layer in model.layers:
        key = _snake_case(type(layer).__name__)
        _, other, transform = mapping.get(layer.name, (None, None, None))
        if other and key not in group:
            key = _snake_case(other)
        else:
            transform = None
        count = seen.get(key, -1) + 1
        seen[key] = count
        stored_key = key if count == 0 else f"{key}_{count}"
        if layer.weights and stored_key in group and "vars" in group[stored_key]:
            variables = group[stored_key]["vars"]
            arrays = [np.asarray(variables[str(i)]) for i in range(len(variables))]
            result[layer.name] = transform(arrays) if transform else arrays
    return result


def _snake_case(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
