"""The flags of the `effnet` commands, and the checks of their values that several commands
share (data specs, the model the flags ask for).

A command's flags are its function's keyword parameters: the table beside the function gives
each flag's help for that command (a text, or a `Flag`), the parameter its kind (bool, int,
float, str, list[str], a Literal of choices) and its default."""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from typing import Any, Callable, Literal

from absl.app import UsageError

from keras_effnet.errors import UserError

Recipe = Literal["short", "paper"]
Strategy = Literal["auto", "default", "mirrored", "multi_worker", "tpu"]
Precision = Literal["none", "auto", "float16", "bfloat16"]
Quantize = Literal["none", "float16", "dynamic", "int8"]
_KINDS = {bool: "bool", int: "integer", float: "float", str: "string", list: "list"}


@dataclasses.dataclass(frozen=True)
class Flag:
    """A flag's help for one command, with what a plain text cannot say: `convert` (the flag's
    value to the function's argument), `group` (flags gathered into the one dict argument of
    that name, with their non-None values; `kind`: their absl kind) and `note` (text added to
    the help when it is shown)."""
    help: str
    convert: Callable[[Any], Any] | None = None
    group: str | None = None
    kind: str = "float"
    note: Callable[[str], str] | None = None


def parameters(function: Callable) -> dict[str, tuple[str, tuple, Any]]:
    """{parameter: (absl kind, enum values, default)} of a command function's keywords."""
    hints, result = typing.get_type_hints(function), {}
    for name, parameter in inspect.signature(function).parameters.items():
        hint = hints[name]
        if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None
            hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        origin = typing.get_origin(hint)
        kind = "enum" if origin is Literal else _KINDS.get(origin or hint)
        default = parameter.default
        result[name] = (kind, typing.get_args(hint) if kind == "enum" else (),
                        None if default is inspect.Parameter.empty else default)
    return result


def changed(function: Callable, **values: Any) -> list[str]:
    """The flags (`--name`) among `values` whose value is not `function`'s default: a setting
    that the other flags would make it ignore is refused when it changes anything."""
    default = parameters(function)
    return [f"--{name}" for name, value in values.items() if value != default[name][2]]


# `name=value` as a Python message writes it (a quoted string, or a bare word up to a space or
# punctuation), not inside a path, a URL or a flag; and a Python call written out, left alone.
_KEYWORD = re.compile(r"(?<![\w.\-/?&:=])(?P<name>[A-Za-z_]\w*)="
                      r"(?P<value>'[^']*'|\"[^\"]*\"|[^\s,;()\[\]]*)")
_CALL = re.compile(r"(\b\w+\([^()]*\))")


def flag_syntax(message: str, function: Callable | None, table: dict) -> str:
    """A library message as a CLI user types it: each `name=value` whose name is one of the
    command's flags (`table`; `function`: the command's) becomes that flag
    (weights='/w.h5' -> --weights=/w.h5, skip_head=True -> --skip_head, weights=None ->
    --weights=none), and a flag then repeated in parentheses once. Other names, and Python
    calls written out (`f(a=1)`), stay as they are."""
    import shlex

    kinds = parameters(function) if function else {}

    def flag(match: re.Match) -> str:
        name, value = match["name"], match["value"]
        if name not in table:
            return match[0]
        end = ""
        if value[:1] in ("'", '"'):
            value = value[1:-1]
        elif value.endswith("."):  # the end of a sentence
            value, end = value[:-1], "."
        if kinds.get(name, ("",))[0] == "bool" and value in ("True", "False"):
            return f"--{'' if value == 'True' else 'no'}{name}{end}"
        value = "none" if value == "None" else value
        return f"--{name}={shlex.quote(value) if value else ''}{end}"

    parts = _CALL.split(message)
    text = "".join(part if i % 2 else _KEYWORD.sub(flag, part) for i, part in enumerate(parts))
    return re.sub(r"(--\w+(?:=[^\s()]+)?) \(\1\)", r"\1", text)


def none_word(value: str | None) -> str | None:
    """--weights as the library takes it: None for `none` (or nothing: `--weights=`)."""
    return None if value is None or value.strip().lower() in ("", "none") else value


DATA_SPEC = "synthetic | folder:PATH | tfrecord:GLOB"
VARIANT = ("released variant: b0..b7, lite0..lite4, v2-b0..v2-b3, v2-s, v2-m, v2-l (also "
           "efficientnetv2-s)")
BASE_RESOLUTION = ("resolution at φ = 0 (default: the base's own: 224; V2-S 384, V2-M and V2-L "
                   "480)")
# the commands that build one model, and those that also train it
MODEL = {"variant": VARIANT, "phi": "compound coefficient φ",
         "base": "base network for φ: efficientnet, lite, efficientnetv2, efficientnetv2-s, "
                 "efficientnetv2-m, efficientnetv2-l, mobilenet_v1, mobilenet_v2, resnet50",
         "base_resolution": BASE_RESOLUTION,
         "resolution": "input size of the built model (default: the config's)"}
BATCH_SIZE = "global batch size (split across replicas)"
TRAINING = {"data": f"data spec: {DATA_SPEC}", "epochs": "training epochs",
            "batch_size": BATCH_SIZE, "recipe": "training recipe (see docs/training.md)",
            "strategy": "tf.distribute strategy", "mixed_precision": "mixed-precision policy",
            "learning_rate": "override the recipe's learning rate (per 256 images)",
            "seed": "random seed"}
WEIGHTS = Flag("imagenet (b0..b7, lite0..lite2, v2-b0..v2-l), a weights file: "
               "keras.applications .h5/.keras/.weights.h5, or a PyTorch checkpoint "
               ".pth/.safetensors (timm tf_efficientnet_*, efficientnet_pytorch, "
               "efficientnet_lite_pytorch), or none (random initialisation)", convert=none_word)
SKIP_HEAD = "with --weights: leave the classifier freshly initialised (a new label set)"


def check_data(flag: str, spec: str, source: str | None = None) -> None:
    """Check a data spec before any model work (`keras_effnet.data.check_spec`: the folder
    and its class sub-folders, the TFRecord files); the error names the flag, or where the
    spec came from (`source`)."""
    from keras_effnet.data import check_spec

    try:
        check_spec(spec)
    except UserError as err:
        where = f"--{flag}={spec}" if source is None else f"{spec} ({source})"
        raise type(err)(f"{where}: {err}") from None


def model_configs(variants: list[str] | None, phis: list[float] | None, base: str,
                  base_resolution: int | None) -> list:
    """The ModelConfigs the model flags ask for: each released variant, or each φ of `base`."""
    import keras_effnet

    if bool(variants) == bool(phis):
        raise UsageError("give exactly one of --variant/--variants and --phi")
    if phis:
        return [keras_effnet.scale(phi=phi, base=base, base_resolution=base_resolution)
                for phi in phis]
    return [keras_effnet.scale(name, base_resolution=base_resolution) for name in variants]


def model_config(variant: str | None, phi: float | None, base: str, base_resolution: int | None):
    """The one ModelConfig --variant or --phi asks for."""
    return model_configs(variant and [variant], None if phi is None else [phi], base,
                         base_resolution)[0]


def recipe(name: str, learning_rate: float | None):
    """The Recipe `name`, with `learning_rate` when given."""
    from keras_effnet.train import Recipe

    return Recipe.named(name, **({} if learning_rate is None else
                                 {"learning_rate": learning_rate}))
