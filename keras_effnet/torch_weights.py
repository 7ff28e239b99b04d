"""PyTorch EfficientNet checkpoints (`.pth`, `.safetensors`) read without torch, and their
tensors mapped to our layers.

Files:
- `.safetensors` through the `safetensors` package (numpy arrays).
- `.pth` / `.pt` / `.bin`, torch's own format, both the zip archive (torch ≥ 1.6) and the older
  sequence of pickles (the `efficientnet_lite_pytorch` and `efficientnet_pytorch` releases).
  The pickles go through a restricted unpickler that admits only tensors, storages and
  (ordered) dicts, so loading a checkpoint never runs code; anything else is refused, naming
  what the file asked for. A nested `{"state_dict": …}` / `{"model": …}` is unwrapped, and
  DataParallel's `module.` prefix dropped.

Layouts (found from the names):
- timm (`tf_efficientnet_b0…b8` incl. AdvProp / NoisyStudent, `tf_efficientnet_lite0…4`):
  `conv_stem`, `bn1`, `blocks.{stage}.{j}` = `conv_pw`/`bn1` (expansion), `conv_dw`/`bn2`,
  `se.conv_reduce`/`se.conv_expand`, `conv_pwl`/`bn3`; a block without expansion is
  `conv_dw`/`bn1`, `se.*`, `conv_pw`/`bn2`; then `conv_head`, `bn2`, `classifier`.
- efficientnet_pytorch (lukemelas) and its `efficientnet_lite_pytorch` ports: `_conv_stem`,
  `_bn0`, `_blocks.{i}` = `_expand_conv`/`_bn0`, `_depthwise_conv`/`_bn1`, `_se_reduce`,
  `_se_expand`, `_project_conv`/`_bn2`; then `_conv_head`, `_bn1`, `_fc`.

Transposes: convolutions OIHW → HWIO, depthwise (C, 1, kh, kw) → (kh, kw, C, 1), linear
(out, in) → (in, out); batch norm weight, bias, running_mean, running_var → γ, β, mean,
variance. These checkpoints are ports of the reference TF ones ("same" padding, BN ε 1e-3),
which is what our networks compute; timm's non-`tf_` EfficientNets pad symmetrically and
load, but compute a slightly different function.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
from typing import Any, Iterator

import numpy as np

from keras_effnet.errors import InvalidArgument

SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
# torch storage class -> numpy dtype (bfloat16 is widened to float32 on reading)
_STORAGES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
             "BFloat16Storage": "bfloat16", "LongStorage": "<i8", "IntStorage": "<i4",
             "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
             "BoolStorage": "?"}
_NESTED = ("state_dict", "model", "model_state_dict", "state_dict_ema", "model_ema")


class UnsafeCheckpointError(InvalidArgument):
    """The pickle asked for something a weights checkpoint has no need of."""


def is_torch_file(path: str) -> bool:
    return path.lower().endswith(SUFFIXES)


# --- reading -------------------------------------------------------------------------------

class _Storage:
    def __init__(self, dtype: str, key: str, numel: int) -> None:
        self.dtype, self.key, self.numel = dtype, key, numel
        self.array: np.ndarray | None = None


class _Tensor:
    """A tensor whose storage bytes may come later (the old format stores them last)."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), stride

    def resolve(self) -> np.ndarray:
        data = self.storage.array
        if not self.size:
            return np.array(data[self.offset])
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.size,
                                               strides=[s * item for s in self.stride])
        return np.array(view)


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple, stride: tuple,
                    *_: Any) -> _Tensor:
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data: Any, *_: Any) -> Any:
    return data


class _Unpickler(pickle.Unpickler):
    _ALLOWED = {("collections", "OrderedDict"): collections.OrderedDict,
                ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
                ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
                ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
                ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
                ("torch", "Size"): tuple}

    def __init__(self, file: Any, path: str) -> None:
        super().__init__(file)
        self.path, self.storages = path, {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGES:
            return name
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        raise UnsafeCheckpointError(
            f"{self.path!r} asks to load {module}.{name}, which a weights checkpoint does not "
            "need; refused (loading weights must not run code). Re-save only the weights: "
            "torch.save(model.state_dict(), path), or safetensors.torch.save_file")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise UnsafeCheckpointError(f"{self.path!r} holds a pickled {pid!r:.60}, not a "
                                        "tensor storage; refused")
        kind, key, numel = pid[1], str(pid[2]), int(pid[4])
        if len(pid) > 5 and pid[5] is not None:
            raise InvalidArgument(f"{self.path!r} stores a view into a storage (torch < 0.4); "
                                  "re-save it with a current torch")
        if kind not in _STORAGES:
            raise UnsafeCheckpointError(f"{self.path!r}: unknown storage type {kind!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(_STORAGES[kind], key, numel)
        return self.storages[key]


def _array(raw: bytes, dtype: str) -> np.ndarray:
    if dtype == "bfloat16":  # the high half of a float32
        return (np.frombuffer(raw, "<u2").astype("<u4") << 16).view("<f4")
    return np.frombuffer(raw, dtype)


def _read_zip(path: str) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickled = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pickled is None:
            raise InvalidArgument(f"{path!r} is a zip archive without data.pkl: not a torch "
                                  "checkpoint")
        root = pickled[:-len("data.pkl")]
        unpickler = _Unpickler(io.BytesIO(archive.read(pickled)), path)
        result = unpickler.load()
        for key, storage in unpickler.storages.items():
            storage.array = _array(archive.read(f"{root}data/{key}"), storage.dtype)
    return result


def _read_legacy(path: str) -> Any:
    """torch < 1.6: pickles of a magic number, protocol version and system info, the object,
    the storage keys; then each storage as an int64 element count and its raw bytes."""
    with open(path, "rb") as f:
        try:
            magic = _Unpickler(f, path).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
                AttributeError, OverflowError, MemoryError):  # what pickle raises on noise
            magic = None
        if magic != 0x1950A86A20F9469CFC6C:
            raise InvalidArgument(f"{path!r} is neither a torch zip checkpoint nor a legacy torch "
                                  "file; re-save it with torch.save(model.state_dict(), path) or "
                                  "safetensors.torch.save_file")
        _Unpickler(f, path).load()  # protocol version
        _Unpickler(f, path).load()  # system info (endianness, type sizes)
        unpickler = _Unpickler(f, path)
        result = unpickler.load()
        keys = _Unpickler(f, path).load()
        for key in keys:
            storage = unpickler.storages[str(key)]
            count = int(np.frombuffer(f.read(8), "<i8")[0])
            size = 2 if storage.dtype == "bfloat16" else np.dtype(storage.dtype).itemsize
            raw = f.read(count * size)
            if len(raw) != count * size:
                raise InvalidArgument(f"{path!r} is truncated (storage {key})")
            storage.array = _array(raw, storage.dtype)
    return result


def _resolved(value: Any) -> Any:
    if isinstance(value, _Tensor):
        return value.resolve()
    if isinstance(value, dict):
        return {k: _resolved(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_resolved(v) for v in value)
    return value


def read_state_dict(path: str) -> dict[str, np.ndarray]:
    """The checkpoint's tensors by name, as numpy arrays."""
    if path.lower().endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            state: Any = load_file(path)
        except (SafetensorError, OSError, ValueError, TypeError) as err:
            raise InvalidArgument(f"{path!r} is not a readable .safetensors file: {err} (bfloat16 "
                                  "tensors need a float32 copy: tensor.float())") from None
    else:
        try:
            state = _resolved(_read_zip(path) if zipfile.is_zipfile(path)
                              else _read_legacy(path))
        except (pickle.UnpicklingError, EOFError, KeyError, IndexError, TypeError) as err:
            raise InvalidArgument(f"{path!r} is not a readable torch checkpoint: {err}") from None
    for key in _NESTED:  # a training checkpoint: {"state_dict": {...}, "epoch": ...}
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not state:
        raise InvalidArgument(f"{path!r} holds no state dict (a name -> tensor mapping)")
    arrays = {}
    for name, value in state.items():
        if isinstance(value, np.ndarray):
            arrays[name[len("module."):] if name.startswith("module.") else name] = value
    if not arrays:
        raise InvalidArgument(f"{path!r} holds no tensors at its top level (keys "
                              f"{list(state)[:5]})")
    return arrays


# --- mapping -------------------------------------------------------------------------------

# our layer suffix -> (timm name with expansion, timm name without, efficientnet_pytorch name)
_BLOCK = {"expand_conv": ("conv_pw", None, "_expand_conv"),
          "expand_bn": ("bn1", None, "_bn0"),
          "dwconv": ("conv_dw", "conv_dw", "_depthwise_conv"),
          "bn": ("bn2", "bn1", "_bn1"),
          "se_reduce": ("se.conv_reduce", "se.conv_reduce", "_se_reduce"),
          "se_expand": ("se.conv_expand", "se.conv_expand", "_se_expand"),
          "project_conv": ("conv_pwl", "conv_pw", "_project_conv"),
          "project_bn": ("bn3", "bn2", "_bn2")}
# our top-level layer -> (timm, efficientnet_pytorch)
_TOP = {"stem_conv": ("conv_stem", "_conv_stem"), "stem_bn": ("bn1", "_bn0"),
        "top_conv": ("conv_head", "_conv_head"), "top_bn": ("bn2", "_bn1"),
        "predictions": ("classifier", "_fc")}
LAYOUTS = {"timm": "conv_stem.weight", "efficientnet_pytorch": "_conv_stem.weight"}


def layout(state: dict[str, np.ndarray], path: str) -> str:
    found = [name for name, key in LAYOUTS.items() if key in state]
    if not found:
        raise InvalidArgument(f"{path!r} is not an EfficientNet checkpoint of a known layout "
                              f"(timm: 'conv_stem.weight', efficientnet_pytorch: "
                              f"'_conv_stem.weight'); its first keys: {list(state)[:4]}")
    return found[0]


def _sources(config: Any, kind: str) -> Iterator[tuple[str, str]]:
    """(our layer, the checkpoint's module prefix) for every layer that may hold weights."""
    timm = kind == "timm"
    for ours, names in _TOP.items():
        yield ours, names[0 if timm else 1]
    blocks = enumerate(config.blocks)
    for stage_index, stage in enumerate(config.stages):
        for j in range(stage.repeats):
            index, block = next(blocks)
            prefix = f"blocks.{stage_index}.{j}." if timm else f"_blocks.{index}."
            expands = block.expand_ratio != 1
            for suffix, (with_expand, without, flat) in _BLOCK.items():
                theirs = flat if not timm else with_expand if expands else without
                if theirs is not None:
                    yield f"{block.name}_{suffix}", prefix + theirs


def _convert(layer_class: str, tensors: dict[str, np.ndarray]) -> list[np.ndarray] | None:
    if layer_class == "BatchNormalization":
        parts = ("weight", "bias", "running_mean", "running_var")
        return [tensors[p] for p in parts] if all(p in tensors for p in parts) else None
    if "weight" not in tensors:
        return None
    kernel = tensors["weight"]
    if layer_class == "Dense":
        kernel = kernel.T
    elif layer_class == "DepthwiseConv2D":
        kernel = kernel.transpose(2, 3, 0, 1)
    elif kernel.ndim == 4:
        kernel = kernel.transpose(2, 3, 1, 0)
    return [kernel] + ([tensors["bias"]] if "bias" in tensors else [])


def read_torch_weights(path: str, model: Any) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    """({our layer name: its arrays in Keras order}, the checkpoint tensors no layer took)."""
    config = getattr(model, "effnet_config", None)
    if config is None or any(s.kind != "mbconv" for s in config.stages):
        raise InvalidArgument(f"{path!r}: PyTorch EfficientNet checkpoints load into EfficientNet "
                              "and EfficientNet-Lite (mbconv) networks only")
    state = read_state_dict(path)
    kind = layout(state, path)
    classes = {layer.name: type(layer).__name__ for layer in model.layers}
    stored, used = {}, set()
    for ours, prefix in _sources(config, kind):
        tensors = {name[len(prefix) + 1:]: array for name, array in state.items()
                   if name.startswith(prefix + ".") and "." not in name[len(prefix) + 1:]}
        arrays = _convert(classes.get(ours, ""), tensors) if ours in classes else None
        if arrays is not None:
            stored[ours] = arrays
        if arrays is not None or ours == "predictions":  # a headless model leaves it unused
            used.update(f"{prefix}.{part}" for part in tensors)
    leftovers = sorted(name for name in state if name not in used
                       and not name.endswith("num_batches_tracked"))
    return stored, leftovers
