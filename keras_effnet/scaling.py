"""Compound scaling: turn (variant | φ, α, β, γ, base) into one explicit, frozen model config.

Pure Python (no TensorFlow import), so configs can be resolved, printed, compared and
profiled instantly. Everything that builds or measures a model reads a `ModelConfig`;
nothing else recomputes scaling.

Example:
    >>> from keras_effnet import scale
    >>> cfg = scale(phi=1)
    >>> cfg.resolution, round(cfg.width, 3), round(cfg.depth, 3)
    (256, 1.1, 1.2)
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15  # the paper's grid-searched coefficients (Sec. 3.3)
MIN_RESOLUTION = 32
DIVISOR = 8  # channel counts are rounded to multiples of this
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# Old field and argument names, kept working for one release (with a DeprecationWarning).
RENAMED = {"dropout": "dropout_rate", "drop_connect_rate": "drop_path_rate",
           "drop_rate": "drop_path_rate"}


def renamed_argument(old: str, old_value: Any, new: str, new_value: Any, default: Any) -> Any:
    """The value of argument `new`, taking a deprecated `old` name's value when given."""
    if old_value is None:
        return new_value
    if new_value != default:
        raise ValueError(f"pass {new}= only ({old}= is its deprecated name); got both")
    warnings.warn(f"{old}= is deprecated; use {new}= (same meaning)", DeprecationWarning,
                  stacklevel=3)
    return old_value


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class StageSpec:
    """One row of a base network's stage table (paper Table 1)."""

    kernel: int
    repeats: int
    filters_in: int
    filters_out: int
    expand_ratio: int
    stride: int
    se_ratio: float = 0.25

    def validate(self, where: str) -> None:
        def bad(field: str, accepted: str) -> ValueError:
            return ValueError(f"{where}: {field}={getattr(self, field)!r}; accepted: {accepted}")

        for field in ("kernel", "repeats", "filters_in", "filters_out", "expand_ratio"):
            value = getattr(self, field)
            if not _is_int(value) or value < 1:
                raise bad(field, "an integer >= 1")
        if self.kernel % 2 == 0:
            raise bad("kernel", "an odd integer")
        if self.stride not in (1, 2) or not _is_int(self.stride):
            raise bad("stride", "1 or 2")
        if not _is_real(self.se_ratio) or not 0 <= self.se_ratio <= 1:
            raise bad("se_ratio", "a number in [0, 1] (0 = no squeeze-excitation)")


@dataclass(frozen=True)
class BaseNetwork:
    """A base network: its stage table plus the rules that scaling applies to it.

    `fix_stem_head` is the Lite rule of the reference: stem and head widths are not scaled and
    the first and last stages are not depth-scaled.
    """

    name: str
    stages: tuple[StageSpec, ...]
    resolution: int = 224
    stem_filters: int = 32
    head_filters: int = 1280
    activation: str = "swish"
    fix_stem_head: bool = False
    preprocessing: str = "imagenet"  # "imagenet": (x/255 - mean)/std; "lite": (x - 127)/128
    dropout: float = 0.2

    def __post_init__(self) -> None:
        stages = tuple(_as_stage(s, i) for i, s in enumerate(self.stages))
        object.__setattr__(self, "stages", stages)
        if not stages:
            raise ValueError(f"base network {self.name!r} has an empty stage table")
        for i, stage in enumerate(stages):
            stage.validate(f"base {self.name!r} stage {i + 1}")
        expected_in = self.stem_filters
        for i, stage in enumerate(stages):
            if stage.filters_in != expected_in:
                raise ValueError(
                    f"base {self.name!r} stage {i + 1}: filters_in={stage.filters_in} but the "
                    f"{'stem' if i == 0 else 'previous stage'} gives {expected_in}; "
                    "each stage's filters_in must equal the width feeding it")
            expected_in = stage.filters_out
        if self.activation not in ("swish", "relu6", "relu", "silu", "gelu", "hard_swish"):
            raise ValueError(f"base {self.name!r}: activation={self.activation!r}; accepted: "
                             "swish, silu, relu6, relu, gelu, hard_swish")
        if self.preprocessing not in ("imagenet", "lite"):
            raise ValueError(f"base {self.name!r}: preprocessing={self.preprocessing!r}; "
                             "accepted: 'imagenet' or 'lite'")
        if not _is_int(self.resolution) or self.resolution < MIN_RESOLUTION:
            raise ValueError(f"base {self.name!r}: resolution={self.resolution!r}; accepted: "
                             f"an integer >= {MIN_RESOLUTION}")


def _as_stage(row: Any, index: int) -> StageSpec:
    if isinstance(row, StageSpec):
        return row
    if isinstance(row, dict):
        return StageSpec(**row)
    if isinstance(row, (tuple, list)):
        return StageSpec(*row)
    raise TypeError(f"stage {index + 1}: got {type(row).__name__}; accepted: StageSpec, "
                    "a dict of its fields, or a tuple (kernel, repeats, filters_in, filters_out, "
                    "expand_ratio, stride[, se_ratio])")


_B0_STAGES = (
    StageSpec(3, 1, 32, 16, 1, 1),
    StageSpec(3, 2, 16, 24, 6, 2),
    StageSpec(5, 2, 24, 40, 6, 2),
    StageSpec(3, 3, 40, 80, 6, 2),
    StageSpec(5, 3, 80, 112, 6, 1),
    StageSpec(5, 4, 112, 192, 6, 2),
    StageSpec(3, 1, 192, 320, 6, 1),
)

BASES: dict[str, BaseNetwork] = {
    "efficientnet": BaseNetwork("efficientnet", _B0_STAGES),
    "lite": BaseNetwork(
        "lite", tuple(dataclasses.replace(s, se_ratio=0.0) for s in _B0_STAGES),
        activation="relu6", fix_stem_head=True, preprocessing="lite"),
}


@dataclass(frozen=True)
class Variant:
    """A released model: its hand-picked coefficients and the figures published for it."""

    base: str
    width: float
    depth: float
    resolution: int
    dropout_rate: float
    params: int  # trainable parameters with the 1000-class head (REFERENCE.md)
    macs: float  # multiply-adds published by the paper / the Lite README
    top1: float  # ImageNet top-1 published (float model)


VARIANTS: dict[str, Variant] = {
    "b0": Variant("efficientnet", 1.0, 1.0, 224, 0.2, 5_288_548, 0.39e9, 77.1),
    "b1": Variant("efficientnet", 1.0, 1.1, 240, 0.2, 7_794_184, 0.70e9, 79.1),
    "b2": Variant("efficientnet", 1.1, 1.2, 260, 0.3, 9_109_994, 1.0e9, 80.1),
    "b3": Variant("efficientnet", 1.2, 1.4, 300, 0.3, 12_233_232, 1.8e9, 81.6),
    "b4": Variant("efficientnet", 1.4, 1.8, 380, 0.4, 19_341_616, 4.2e9, 82.9),
    "b5": Variant("efficientnet", 1.6, 2.2, 456, 0.4, 30_389_784, 9.9e9, 83.6),
    "b6": Variant("efficientnet", 1.8, 2.6, 528, 0.5, 43_040_704, 19e9, 84.0),
    "b7": Variant("efficientnet", 2.0, 3.1, 600, 0.5, 66_347_960, 37e9, 84.3),
    "lite0": Variant("lite", 1.0, 1.0, 224, 0.2, 4_652_008, 407e6, 75.1),
    "lite1": Variant("lite", 1.0, 1.1, 240, 0.2, 5_416_680, 631e6, 76.7),
    "lite2": Variant("lite", 1.1, 1.2, 260, 0.3, 6_092_072, 899e6, 77.6),
    "lite3": Variant("lite", 1.2, 1.4, 280, 0.3, 8_197_096, 1.44e9, 79.8),
    "lite4": Variant("lite", 1.4, 1.8, 300, 0.3, 13_006_568, 2.64e9, 81.5),
}


@dataclass(frozen=True)
class BlockConfig:
    """One MBConv block, fully resolved. `drop_path_rate` is 0 where there is no identity
    skip."""

    name: str
    kernel: int
    stride: int
    filters_in: int
    filters_out: int
    expand_ratio: int
    se_filters: int  # 0: no squeeze-excitation
    drop_path_rate: float

    @property
    def expanded_filters(self) -> int:
        return self.filters_in * self.expand_ratio

    @property
    def has_skip(self) -> bool:
        return self.stride == 1 and self.filters_in == self.filters_out


@dataclass(frozen=True)
class ModelConfig:
    """The fully explicit description of one network; the builder's only input.

    `stages` are the *scaled* stages (their filters_in is the real width feeding them);
    `blocks` expands them one row per MBConv block with its drop-path rate.
    """

    name: str
    base: str
    phi: float | None
    width: float
    depth: float
    resolution: int
    dropout_rate: float
    drop_path_rate: float
    activation: str
    stem_filters: int
    head_filters: int
    stages: tuple[StageSpec, ...]
    preprocessing: str
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    bn_synchronized: bool = False  # cross-replica batch statistics (the reference's TPU BN)

    @functools.cached_property
    def blocks(self) -> tuple[BlockConfig, ...]:
        total = sum(s.repeats for s in self.stages)
        blocks, index = [], 0
        for stage_number, stage in enumerate(self.stages, start=1):
            for j in range(stage.repeats):
                filters_in = stage.filters_in if j == 0 else stage.filters_out
                stride = stage.stride if j == 0 else 1
                se_filters = max(1, int(filters_in * stage.se_ratio)) if stage.se_ratio > 0 else 0
                skip = stride == 1 and filters_in == stage.filters_out
                blocks.append(BlockConfig(
                    name=f"block{stage_number}{_letters(j)}", kernel=stage.kernel, stride=stride,
                    filters_in=filters_in, filters_out=stage.filters_out,
                    expand_ratio=stage.expand_ratio, se_filters=se_filters,
                    drop_path_rate=self.drop_path_rate * index / total if skip else 0.0))
                index += 1
        return tuple(blocks)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["stages"] = [dataclasses.asdict(s) for s in self.stages]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        data = dict(data)
        for old, new in RENAMED.items():  # configs saved before the rename
            if old in data:
                data[new] = data.pop(old)
        data["stages"] = tuple(StageSpec(**s) for s in data["stages"])
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def summary(self) -> str:
        """A printable stage table, like the paper's Table 1."""
        phi = "" if self.phi is None else f"  phi={self.phi:g}"
        lines = [
            f"{self.name}{phi}  width={self.width:.4g} depth={self.depth:.4g} "
            f"resolution={self.resolution} dropout_rate={self.dropout_rate:g} "
            f"drop_path_rate={self.drop_path_rate:g} activation={self.activation}",
            f"  stem conv3x3 s2 -> {self.stem_filters}",
            "  stage kernel stride expand  se   repeats  filters",
        ]
        for i, s in enumerate(self.stages, start=1):
            lines.append(f"  {i:>5} {s.kernel:>6} {s.stride:>6} {s.expand_ratio:>6} "
                         f"{s.se_ratio:>5g} {s.repeats:>7}  {s.filters_in}->{s.filters_out}")
        lines.append(f"  head conv1x1 -> {self.head_filters}, pool, dropout, dense")
        return "\n".join(lines)


def _letters(j: int) -> str:
    """Block suffix as keras.applications names them: a..z, then aa, ab, … for deep models."""
    out = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        out = chr(97 + r) + out
    return out


def round_filters(filters: float, width: float) -> int:
    """Scale a channel count and round it to a multiple of 8, never losing more than 10 %."""
    scaled = filters * width
    rounded = max(DIVISOR, int(scaled + DIVISOR / 2) // DIVISOR * DIVISOR)
    if rounded < 0.9 * scaled:
        rounded += DIVISOR
    return int(rounded)


def round_repeats(repeats: int, depth: float, nearest: bool = False) -> int:
    """Scale a stage's block count: rounded up for the released variants (as the reference
    does), to the nearest integer (at least 1) for φ, which keeps MACs on the (α·β²·γ²)^φ curve
    (ceil would turn 1 block × 1.2 into 2 and overshoot by up to 27 % at φ = 2)."""
    scaled = repeats * depth
    return max(1, int(math.floor(scaled + 0.5))) if nearest else int(math.ceil(scaled))


def scale(
    variant: str | None = None,
    *,
    phi: float | None = None,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
    base: str | BaseNetwork | Sequence[Any] = "efficientnet",
    base_resolution: int | None = None,
    dropout_rate: float | None = None,
    drop_path_rate: float = 0.2,
    bn_momentum: float = 0.99,
    depth: float | None = None,
    width: float | None = None,
    resolution: float | None = None,
    drop_connect_rate: float | None = None,
) -> ModelConfig:
    """Resolve a released variant, a compound-scaling coefficient φ, or explicit multipliers
    into a `ModelConfig`.

    Exactly one of `variant` ("b0".."b7", "lite0".."lite4"), `phi` (any real number that
    keeps the network valid; φ < 0 scales down) and the multipliers `depth`, `width`,
    `resolution` (each > 0; those left out are 1). For φ: depth = α^φ, width = β^φ,
    resolution = γ^φ. Either way each stage's repeats are rounded to the nearest integer (at
    least 1), channels to multiples of 8 as the reference does, and the resolution
    base_resolution·r to the nearest multiple of 8. `scale(width=2.0)` is width-only scaling;
    `scale(depth=1.2, width=1.1, resolution=1.15)` is `scale(phi=1)`.
    `base_resolution` (default: the base network's 224) is the φ = 0 resolution; a variant's
    resolution is scaled by the same factor, so `scale("b3", base_resolution=112)` is B3 at 150 px.
    `dropout_rate` defaults to the variant's; for φ it grows linearly from 0.2 at φ = 0 to 0.5
    at φ = 7 (the paper's "0.2 for B0 to 0.5 for B7"), clipped to [0.2, 0.5].
    `drop_path_rate` is the stochastic-depth rate of the last block (it grows linearly over
    the scaled blocks). `base` is "efficientnet", "lite", a `BaseNetwork`, or a stage table
    (a custom base). `drop_connect_rate` is the deprecated name of `drop_path_rate`.
    """
    drop_path_rate = renamed_argument("drop_connect_rate", drop_connect_rate,
                                      "drop_path_rate", drop_path_rate, 0.2)
    multipliers = {k: v for k, v in (("depth", depth), ("width", width),
                                     ("resolution", resolution)) if v is not None}
    given = [name for name, value in (("variant", variant), ("phi", phi)) if value is not None]
    if multipliers:
        given.append(", ".join(multipliers))
    if len(given) != 1:
        raise ValueError("pass exactly one of `variant` (e.g. 'b0', 'lite2'), `phi` (a real "
                         "number) and the multipliers depth/width/resolution; got "
                         f"variant={variant!r}, phi={phi!r}, "
                         + ", ".join(f"{k}={v!r}" for k, v in multipliers.items()))
    for label, value in multipliers.items():
        if not _is_real(value) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{label}={value!r}; accepted: a finite multiplier > 0 (1 keeps "
                             "the base network's)")
    base_net = _resolve_base(base)
    res0 = base_net.resolution if base_resolution is None else base_resolution
    if not _is_int(res0) or res0 < MIN_RESOLUTION:
        raise ValueError(f"base_resolution={base_resolution!r}; accepted: an integer >= "
                         f"{MIN_RESOLUTION}")
    _check_fraction("drop_path_rate", drop_path_rate)
    if not _is_real(bn_momentum) or not 0 < bn_momentum < 1:
        raise ValueError(f"bn_momentum={bn_momentum!r}; accepted: a number in (0, 1)")
    coefficients = {"alpha": alpha, "beta": beta, "gamma": gamma}
    for label, value in coefficients.items():
        if not _is_real(value) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{label}={value!r}; accepted: a finite number > 0 "
                             f"(the paper uses alpha={ALPHA}, beta={BETA}, gamma={GAMMA})")
    paper = {"alpha": ALPHA, "beta": BETA, "gamma": GAMMA}
    changed = {k: v for k, v in coefficients.items() if v != paper[k]}
    if changed and phi is None:  # a variant's coefficients are published, multipliers explicit
        key = _variant_key(variant) if variant is not None else None
        raise ValueError(f"{', '.join(f'{k}={v!r}' for k, v in changed.items())} applies only "
                         "with phi; " + (f"variant {variant!r} has published coefficients"
                                         if key else "the multipliers are explicit"))

    if variant is not None:
        key = _variant_key(variant)
        v = VARIANTS[key]
        if base != "efficientnet" and _resolve_base(base).name != v.base:
            raise ValueError(f"variant {variant!r} has base {v.base!r}, but base={base!r} was "
                             "given; leave `base` out when naming a variant")
        base_net = BASES[v.base]
        name = f"efficientnet-{key}"
        width, depth, phi_value = v.width, v.depth, None
        resolution = int(round(v.resolution * res0 / base_net.resolution))
        dropout = v.dropout_rate if dropout_rate is None else dropout_rate
    else:
        kind = "" if base_net.name == "efficientnet" else f"{base_net.name}-"
        if multipliers:
            depth, width = multipliers.get("depth", 1.0), multipliers.get("width", 1.0)
            exact_res = res0 * multipliers.get("resolution", 1.0)
            what = ", ".join(f"{k}={v!r}" for k, v in multipliers.items())
            name = f"efficientnet-{kind}" + "-".join(f"{k[0]}{v:g}" for k, v in
                                                    multipliers.items())
            phi_value, dropout = None, 0.2 if dropout_rate is None else dropout_rate
        else:
            if not _is_real(phi) or not math.isfinite(phi):
                raise ValueError(f"phi={phi!r}; accepted: a finite real number (e.g. 0, 1.5, "
                                 "-1)")
            try:
                depth, width = alpha ** phi, beta ** phi
                exact_res = res0 * gamma ** phi
            except OverflowError:
                raise ValueError(f"phi={phi!r} overflows the scaling coefficients") from None
            if not all(math.isfinite(x) and x > 0 for x in (depth, width, exact_res)):
                raise ValueError(f"phi={phi!r} gives depth={depth}, width={width}, "
                                 f"resolution={exact_res}; accepted: a φ that keeps them "
                                 "finite")
            what, name = f"phi={phi!r}", f"efficientnet-{kind}phi{phi:g}"
            phi_value = float(phi)
            dropout = (min(0.5, max(0.2, 0.2 + 0.3 * phi / 7))
                       if dropout_rate is None else dropout_rate)
        resolution = int(round(exact_res / DIVISOR)) * DIVISOR
        if resolution < MIN_RESOLUTION:
            lowest = (math.log(MIN_RESOLUTION / res0) / math.log(gamma)
                      if gamma != 1 and not multipliers else None)
            hint = f"; the smallest φ for this base is about {lowest:.2f}" if lowest else ""
            raise ValueError(f"{what} gives resolution {resolution} < {MIN_RESOLUTION}{hint}")
    _check_fraction("dropout_rate", dropout)
    if resolution < MIN_RESOLUTION:
        raise ValueError(f"resolution {resolution} < {MIN_RESOLUTION}; raise base_resolution")

    fixed = base_net.fix_stem_head
    stem = base_net.stem_filters if fixed else round_filters(base_net.stem_filters, width)
    head = base_net.head_filters if fixed else round_filters(base_net.head_filters, width)
    stages, feeding = [], stem
    last = len(base_net.stages) - 1
    for i, s in enumerate(base_net.stages):
        repeats = (s.repeats if fixed and i in (0, last)
                   else round_repeats(s.repeats, depth, nearest=variant is None))
        out = round_filters(s.filters_out, width)
        # The real tensor decides filters_in (Lite declares a scaled width the fixed stem lacks).
        stages.append(dataclasses.replace(s, repeats=repeats, filters_in=feeding, filters_out=out))
        feeding = out
    return ModelConfig(
        name=name, base=base_net.name, phi=phi_value, width=float(width), depth=float(depth),
        resolution=resolution, dropout_rate=float(dropout), drop_path_rate=float(drop_path_rate),
        activation=base_net.activation, stem_filters=stem, head_filters=head,
        stages=tuple(stages), preprocessing=base_net.preprocessing, bn_momentum=float(bn_momentum))


def _resolve_base(base: str | BaseNetwork | Sequence[Any]) -> BaseNetwork:
    if isinstance(base, BaseNetwork):
        return base
    if isinstance(base, str):
        if base not in BASES:
            raise ValueError(f"base={base!r}; accepted: {sorted(BASES)}, a BaseNetwork, "
                             "or a stage table")
        return BASES[base]
    if isinstance(base, Iterable):
        return BaseNetwork("custom", tuple(base))
    raise TypeError(f"base: got {type(base).__name__}; accepted: {sorted(BASES)}, "
                    "a BaseNetwork, or a stage table")


def _variant_key(variant: Any) -> str:
    if not isinstance(variant, str):
        raise TypeError(f"variant={variant!r} ({type(variant).__name__}); accepted: one of "
                        f"{', '.join(VARIANTS)}")
    key = variant.strip().lower().replace("_", "-")
    for prefix in ("efficientnet-", "efficientnet"):
        key = key.removeprefix(prefix)
    if key not in VARIANTS:
        near = difflib.get_close_matches(key, list(VARIANTS), n=1, cutoff=0.4)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"unknown variant {variant!r}{hint} Accepted: {', '.join(VARIANTS)}")
    return key


def _check_fraction(label: str, value: Any) -> None:
    if not _is_real(value) or not 0 <= value < 1:
        raise ValueError(f"{label}={value!r}; accepted: a number in [0, 1)")
