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


def fold_keywords(kind: type, given: Any, keywords: dict[str, Any], label: str) -> Any:
    """A settings object (`kind`, a dataclass) from `given` or from the keywords that name its
    fields, which are taken out of `keywords`: the grouped arguments of `build` and
    `search.coefficients` stay callable with today's flat keywords. Both at once is refused."""
    names = {f.name for f in dataclasses.fields(kind)}
    mine = {k: keywords.pop(k) for k in list(keywords) if k in names}
    if given is None:
        return kind(**mine)
    if not isinstance(given, kind):
        raise TypeError(f"{label}={given!r}; accepted: a {kind.__name__}")
    if mine:
        raise ValueError(f"pass {', '.join(sorted(mine))} inside {label}= or as keywords, "
                         "not both")
    return given


def refuse_unknown(function: str, keywords: dict[str, Any], accepted: Iterable[str]) -> None:
    """Python's own error for unknown keywords, with what is accepted and the nearest name."""
    if keywords:
        accepted = sorted(accepted)
        near = [difflib.get_close_matches(k, accepted, n=1) for k in sorted(keywords)]
        hint = "".join(f" (did you mean {m[0]!r}?)" for m in near if m)
        raise TypeError(f"{function}() got unexpected keyword(s) {sorted(keywords)}{hint}; "
                        f"accepted: {', '.join(accepted)}")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# Block kinds: the optional fields each kind takes and their defaults (REQUIRED: must be given).
# mbconv: inverted residual (expand 1×1, depthwise k×k, optional SE, project 1×1), which also
# covers MobileNetV2; fused_mbconv: EfficientNetV2's, whose expand 1×1 + depthwise k×k are one
# k×k conv; separable: MobileNetV1's depthwise k×k + pointwise 1×1; bottleneck:
# ResNet v1's 1×1 → k×k → 1×1 (×4 expansion), projection shortcut on a stage's first block.
REQUIRED = object()
BLOCK_KINDS: dict[str, dict[str, Any]] = {
    "mbconv": {"expand_ratio": REQUIRED, "se_ratio": 0.25},
    "fused_mbconv": {"expand_ratio": REQUIRED, "se_ratio": 0.0},  # EfficientNetV2
    "separable": {},
    "bottleneck": {},
}
BOTTLENECK_EXPANSION = 4  # a bottleneck block's output is 4× its inner width (ResNet v1)
_OPTIONAL_FIELDS = ("expand_ratio", "se_ratio")


def _kind(kind: Any) -> str:
    if isinstance(kind, str) and kind in BLOCK_KINDS:
        return kind
    near = difflib.get_close_matches(str(kind), list(BLOCK_KINDS), n=1, cutoff=0.4)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise ValueError(f"unknown block kind {kind!r}{hint} Accepted: {', '.join(BLOCK_KINDS)}")


@dataclass(frozen=True)
class StageSpec:
    """One row of a base network's stage table (paper Table 1), naming its block kind.

    `expand_ratio` and `se_ratio` belong to `mbconv` (expand_ratio required, se_ratio 0.25 by
    default, 0 = no squeeze-excitation) and `fused_mbconv` (se_ratio 0 by default);
    `separable` and `bottleneck` take neither.
    """

    kernel: int
    repeats: int
    filters_in: int
    filters_out: int
    expand_ratio: int | None = None
    stride: int = 1
    se_ratio: float | None = None
    kind: str = "mbconv"

    def __post_init__(self) -> None:
        takes = BLOCK_KINDS[_kind(self.kind)]
        for field in _OPTIONAL_FIELDS:
            value = getattr(self, field)
            if field not in takes:
                if value is not None:
                    accepted = ["kernel", "repeats", "filters_in", "filters_out", "stride",
                                *takes]
                    raise ValueError(f"block kind {self.kind!r} takes no {field} (got "
                                     f"{value!r}); its fields: {', '.join(accepted)}")
            elif value is None:
                if takes[field] is REQUIRED:
                    raise ValueError(f"block kind {self.kind!r} needs {field}")
                object.__setattr__(self, field, takes[field])

    def validate(self, where: str) -> None:
        def bad(field: str, accepted: str) -> ValueError:
            return ValueError(f"{where}: {field}={getattr(self, field)!r}; accepted: {accepted}")

        for field in ("kernel", "repeats", "filters_in", "filters_out", "expand_ratio"):
            value = getattr(self, field)
            if value is None and field == "expand_ratio":  # a kind without expansion
                continue
            if not _is_int(value) or value < 1:
                raise bad(field, "an integer >= 1")
        if self.kernel % 2 == 0:
            raise bad("kernel", "an odd integer")
        if self.stride not in (1, 2) or not _is_int(self.stride):
            raise bad("stride", "1 or 2")
        if self.se_ratio is not None and (not _is_real(self.se_ratio) or
                                          not 0 <= self.se_ratio <= 1):
            raise bad("se_ratio", "a number in [0, 1] (0 = no squeeze-excitation)")
        if self.kind == "bottleneck" and self.filters_out % BOTTLENECK_EXPANSION:
            raise bad("filters_out", f"a multiple of {BOTTLENECK_EXPANSION} (a bottleneck's "
                      "output is 4× its inner width)")


STEMS = ("conv", "conv_pool")  # conv: k×k s2 conv; conv_pool: ResNet's padded conv + max pool
PREPROCESSINGS = ("imagenet", "lite", "tf", "caffe", "efficientnetv2")
ACTIVATIONS = ("swish", "silu", "relu6", "relu", "gelu", "hard_swish")
# keep_90: to the nearest multiple of 8, plus 8 where that keeps < 90 % of f·w (EfficientNet,
# MobileNetV2); nearest: to the nearest multiple of 8 only (EfficientNetV2's round_filters).
FILTER_ROUNDINGS = ("keep_90", "nearest")
# The depthwise conv's layer name in an mbconv/separable block (keras.applications' weight
# files load by name): EfficientNet's `block2a_dwconv`, EfficientNetV2's `block4a_dwconv2`.
DEPTHWISE_NAMES = ("dwconv", "dwconv2")


@dataclass(frozen=True)
class BaseNetwork:
    """A base network: its stage table plus the rules that scaling applies to it.

    `stem` is "conv" (a k×k stride-2 conv, BN, activation) or "conv_pool" (ResNet's: zero
    padding k//2, k×k stride-2 conv, BN, activation, zero padding 1, 3×3 stride-2 max pool).
    `head_filters` is the 1×1 head conv's width (0: no head conv, as MobileNetV1 and ResNet).
    `fix_stem_head` is the Lite rule of the reference: stem and head widths are not scaled and
    the first and last stages are not depth-scaled. `head_grows_only` is MobileNetV2's rule: the
    head widens with width > 1 and keeps its width below. `dropout_per_phi` is how much the
    classifier's dropout rate grows per unit of φ (EfficientNet: 0.2 at B0 to 0.5 at B7).
    `bn_momentum` is the batch-norm momentum a model of this base is built with unless given
    (EfficientNetV2: 0.9), `filter_rounding` how scaled widths round (FILTER_ROUNDINGS) and
    `depthwise_name` the depthwise conv's layer name (DEPTHWISE_NAMES).
    """

    name: str
    stages: tuple[StageSpec, ...]
    resolution: int = 224
    stem_filters: int = 32
    head_filters: int = 1280
    activation: str = "swish"
    fix_stem_head: bool = False
    preprocessing: str = "imagenet"  # see assembly.preprocessing_constants
    dropout: float = 0.2
    stem: str = "conv"
    stem_kernel: int = 3
    conv_bias: bool = False
    bn_epsilon: float = 1e-3
    head_grows_only: bool = False
    dropout_per_phi: float = 0.3 / 7
    bn_momentum: float = 0.99
    filter_rounding: str = "keep_90"
    depthwise_name: str = "dwconv"

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
        for field, accepted in (("activation", ACTIVATIONS), ("preprocessing", PREPROCESSINGS),
                                ("stem", STEMS), ("filter_rounding", FILTER_ROUNDINGS),
                                ("depthwise_name", DEPTHWISE_NAMES)):
            if getattr(self, field) not in accepted:
                raise ValueError(f"base {self.name!r}: {field}={getattr(self, field)!r}; "
                                 f"accepted: {', '.join(accepted)}")
        for field, low in (("resolution", MIN_RESOLUTION), ("stem_filters", 1),
                           ("stem_kernel", 1), ("head_filters", 0)):
            value = getattr(self, field)
            if not _is_int(value) or value < low:
                raise ValueError(f"base {self.name!r}: {field}={value!r}; accepted: an "
                                 f"integer >= {low}")
        if not _is_real(self.bn_momentum) or not 0 < self.bn_momentum < 1:
            raise ValueError(f"base {self.name!r}: bn_momentum={self.bn_momentum!r}; accepted: "
                             "a number in (0, 1)")


def _as_stage(row: Any, index: int) -> StageSpec:
    try:
        if isinstance(row, StageSpec):
            return row
        if isinstance(row, dict):
            unknown = sorted(set(row) - {f.name for f in dataclasses.fields(StageSpec)})
            if unknown:
                raise ValueError(f"unknown field(s) {unknown}; accepted: "
                                 f"{', '.join(f.name for f in dataclasses.fields(StageSpec))}")
            return StageSpec(**row)
        if isinstance(row, (tuple, list)):
            return StageSpec(*row)
    except (TypeError, ValueError) as err:
        raise type(err)(f"stage {index + 1}: {err}") from None
    raise TypeError(f"stage {index + 1}: got {type(row).__name__}; accepted: StageSpec, "
                    "a dict of its fields, or a tuple (kernel, repeats, filters_in, filters_out, "
                    "expand_ratio, stride[, se_ratio[, kind]])")


_B0_STAGES = (
    StageSpec(3, 1, 32, 16, 1, 1),
    StageSpec(3, 2, 16, 24, 6, 2),
    StageSpec(5, 2, 24, 40, 6, 2),
    StageSpec(3, 3, 40, 80, 6, 2),
    StageSpec(5, 3, 80, 112, 6, 1),
    StageSpec(5, 4, 112, 192, 6, 2),
    StageSpec(3, 1, 192, 320, 6, 1),
)


def _v2_base(name: str, resolution: int, dropout: float, preprocessing: str,
             rows: tuple[tuple[int, int, int, int, int], ...]) -> BaseNetwork:
    """An EfficientNetV2 base (keras.applications' `efficientnet_v2.py`, the authors'
    `effnetv2_configs.py`): rows (repeats, filters_in, filters_out, expand_ratio, stride), all
    3×3, the first three Fused-MBConv without SE, the others MBConv with SE 0.25; the stem is
    as wide as stage 1's input; BN momentum 0.9; widths round to the nearest multiple of 8."""
    stages = tuple(StageSpec(3, n, c_in, c_out, e, s, kind="fused_mbconv" if i < 3 else "mbconv")
                   for i, (n, c_in, c_out, e, s) in enumerate(rows))
    return BaseNetwork(name, stages, resolution=resolution, stem_filters=rows[0][1],
                       dropout=dropout, preprocessing=preprocessing, bn_momentum=0.9,
                       filter_rounding="nearest", depthwise_name="dwconv2")


# Bases of other families (paper Table 3); their models are named "<base>-…", not "efficientnet-…".
FAMILIES = ("mobilenet_v1", "mobilenet_v2", "resnet50")

BASES: dict[str, BaseNetwork] = {
    "efficientnet": BaseNetwork("efficientnet", _B0_STAGES),
    "lite": BaseNetwork(
        "lite", tuple(dataclasses.replace(s, se_ratio=0.0) for s in _B0_STAGES),
        activation="relu6", fix_stem_head=True, preprocessing="lite"),
    # keras.applications.MobileNet(alpha=1.0): 13 depthwise-separable blocks, no head conv.
    "mobilenet_v1": BaseNetwork(
        "mobilenet_v1", tuple(StageSpec(3, n, c_in, c_out, stride=s, kind="separable")
                              for n, c_in, c_out, s in ((1, 32, 64, 1), (2, 64, 128, 2),
                                                        (2, 128, 256, 2), (6, 256, 512, 2),
                                                        (2, 512, 1024, 2))),
        head_filters=0, activation="relu6", preprocessing="tf", dropout=1e-3, dropout_per_phi=0),
    # keras.applications.MobileNetV2(alpha=1.0): the paper's (t, c, n, s) rows, no SE.
    "mobilenet_v2": BaseNetwork(
        "mobilenet_v2", tuple(StageSpec(3, n, c_in, c_out, t, s, 0.0)
                              for t, c_in, c_out, n, s in ((1, 32, 16, 1, 1), (6, 16, 24, 2, 2),
                                                           (6, 24, 32, 3, 2), (6, 32, 64, 4, 2),
                                                           (6, 64, 96, 3, 1), (6, 96, 160, 3, 2),
                                                           (6, 160, 320, 1, 1))),
        activation="relu6", preprocessing="tf", dropout=0.0, dropout_per_phi=0,
        head_grows_only=True),
    # keras.applications.ResNet50: v1 bottlenecks, stride on the first 1×1 conv, biased convs.
    "resnet50": BaseNetwork(
        "resnet50", tuple(StageSpec(3, n, c_in, c_out, stride=s, kind="bottleneck")
                          for n, c_in, c_out, s in ((3, 64, 256, 1), (4, 256, 512, 2),
                                                    (6, 512, 1024, 2), (3, 1024, 2048, 2))),
        stem_filters=64, head_filters=0, activation="relu", preprocessing="caffe", dropout=0.0,
        dropout_per_phi=0, stem="conv_pool", stem_kernel=7, conv_bias=True, bn_epsilon=1.001e-5),
    # EfficientNetV2 (Tan & Le, 2021): V2-B0's table, scaled to B1-B3 like EfficientNet; S, M
    # and L are tables of their own (x/128 - 1 input, as keras.applications).
    "efficientnetv2": _v2_base("efficientnetv2", 224, 0.2, "imagenet", (
        (1, 32, 16, 1, 1), (2, 16, 32, 4, 2), (2, 32, 48, 4, 2), (3, 48, 96, 4, 2),
        (5, 96, 112, 6, 1), (8, 112, 192, 6, 2))),
    "efficientnetv2-s": _v2_base("efficientnetv2-s", 384, 0.2, "efficientnetv2", (
        (2, 24, 24, 1, 1), (4, 24, 48, 4, 2), (4, 48, 64, 4, 2), (6, 64, 128, 4, 2),
        (9, 128, 160, 6, 1), (15, 160, 256, 6, 2))),
    "efficientnetv2-m": _v2_base("efficientnetv2-m", 480, 0.3, "efficientnetv2", (
        (3, 24, 24, 1, 1), (5, 24, 48, 4, 2), (5, 48, 80, 4, 2), (7, 80, 160, 4, 2),
        (14, 160, 176, 6, 1), (18, 176, 304, 6, 2), (5, 304, 512, 6, 1))),
    "efficientnetv2-l": _v2_base("efficientnetv2-l", 480, 0.4, "efficientnetv2", (
        (4, 32, 32, 1, 1), (7, 32, 64, 4, 2), (7, 64, 96, 4, 2), (10, 96, 192, 4, 2),
        (19, 192, 224, 6, 1), (25, 224, 384, 6, 2), (7, 384, 640, 6, 1))),
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
    note: str = ""  # why `macs` is not reproduced within 10 %, measured (empty: it is)


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
    # EfficientNetV2: params keras.applications', MACs the authors' README (B0-B3) and the
    # paper's Table 7 (S, M, L), top-1 ImageNet-1k; dropout the authors' effnetv2_configs.
    "v2-b0": Variant("efficientnetv2", 1.0, 1.0, 224, 0.2, 7_139_704, 0.72e9, 78.7),
    "v2-b1": Variant("efficientnetv2", 1.0, 1.1, 240, 0.2, 8_141_052, 1.2e9, 79.8),
    "v2-b2": Variant("efficientnetv2", 1.1, 1.2, 260, 0.3, 10_096_086, 1.7e9, 80.5),
    "v2-b3": Variant("efficientnetv2", 1.2, 1.4, 300, 0.3, 14_358_406, 3.0e9, 82.1),
    "v2-s": Variant("efficientnetv2-s", 1.0, 1.0, 384, 0.2, 21_458_488, 8.8e9, 83.9),
    "v2-m": Variant("efficientnetv2-m", 1.0, 1.0, 480, 0.3, 54_139_356, 24e9, 85.1),
    "v2-l": Variant("efficientnetv2-l", 1.0, 1.0, 480, 0.4, 118_515_272, 53e9, 85.7),
}


@dataclass(frozen=True)
class PublishedScaling:
    """One row of the paper's Table 3: a base scaled by explicit multipliers, with the FLOPs
    (multiply-adds) and top-1 the paper reports. `note` says how multipliers the paper does
    not state were found, or why a figure is not matched within 10 %."""

    base: str
    label: str
    multipliers: tuple[tuple[str, float], ...]  # () is the baseline
    macs: float
    top1: float
    note: str = ""

    def config(self) -> "ModelConfig":
        """The row's network: the reference's depth rounding (ceil), which the paper's FLOPs
        come from (with round-to-nearest the compound rows fall 10-14 % short)."""
        if not self.multipliers:
            return scale(phi=0, base=self.base)
        return scale(base=self.base, depth_rounding="ceil", **dict(self.multipliers))


_SAME_AS_V1 = ("not stated; MobileNetV1's d=1.4, w=1.2, r=1.3 (also Table 7's for B0) "
               "reproduce the paper's FLOPs")
_R50_STRIDE = ("keras.applications' ResNet-50 strides its first 1x1 conv: 3.86 B at 224 px; "
               "with the stride on the 3x3 conv (the paper's count) it is 4.09 B")
TABLE3 = (
    PublishedScaling("mobilenet_v1", "baseline", (), 0.6e9, 70.6),
    PublishedScaling("mobilenet_v1", "w=2", (("width", 2.0),), 2.2e9, 74.2),
    PublishedScaling("mobilenet_v1", "r=2", (("resolution", 2.0),), 2.2e9, 72.7),
    PublishedScaling("mobilenet_v1", "compound", (("depth", 1.4), ("width", 1.2),
                                                  ("resolution", 1.3)), 2.3e9, 75.6),
    PublishedScaling("mobilenet_v2", "baseline", (), 0.3e9, 72.0),
    PublishedScaling("mobilenet_v2", "d=4", (("depth", 4.0),), 1.2e9, 76.8),
    PublishedScaling("mobilenet_v2", "w=2", (("width", 2.0),), 1.1e9, 76.4),
    PublishedScaling("mobilenet_v2", "r=2", (("resolution", 2.0),), 1.2e9, 74.8),
    PublishedScaling("mobilenet_v2", "compound", (("depth", 1.4), ("width", 1.2),
                                                  ("resolution", 1.3)), 1.3e9, 77.4, _SAME_AS_V1),
    PublishedScaling("resnet50", "baseline", (), 4.1e9, 76.0, _R50_STRIDE),
    PublishedScaling("resnet50", "d=4", (("depth", 4.0),), 16.2e9, 78.1,
                     "missed (-11.5 %): 4x the blocks of [3, 4, 6, 3] is 3.72x the baseline's "
                     "MACs (3.56x with the stride on the 3x3); the paper's row is 3.95x its "
                     "baseline. " + _R50_STRIDE),
    PublishedScaling("resnet50", "w=2", (("width", 2.0),), 14.7e9, 77.7),
    PublishedScaling("resnet50", "r=2", (("resolution", 2.0),), 16.4e9, 77.5),
    PublishedScaling("resnet50", "compound", (("depth", 1.4), ("width", 1.2),
                                              ("resolution", 1.4)), 16.7e9, 78.8,
                     "not stated; d=1.4, w=1.2, r=1.4 is the 0.1-step triple nearest "
                     "MobileNetV1's (1.4, 1.2, 1.3) that reproduces 16.7 B (1.3 gives 13.9 B)"),
)


@dataclass(frozen=True)
class BlockConfig:
    """One block, fully resolved. `skip` is "identity", "projection" (a 1×1 conv + BN
    shortcut: a bottleneck stage's first block) or "none"; `drop_path_rate` is 0 where there is
    no identity skip. `expand_ratio` is None and `se_filters` 0 for kinds without them."""

    name: str
    kernel: int
    stride: int
    filters_in: int
    filters_out: int
    expand_ratio: int | None
    se_filters: int  # 0: no squeeze-excitation
    drop_path_rate: float
    kind: str = "mbconv"
    skip: str = "identity"

    @property
    def inner_filters(self) -> int:
        """The width inside the block: expanded (mbconv), 1/4 of the output (bottleneck)."""
        if self.kind == "bottleneck":
            return self.filters_out // BOTTLENECK_EXPANSION
        return self.filters_in * (self.expand_ratio or 1)

    @property
    def expanded_filters(self) -> int:  # the name before other block kinds existed
        return self.inner_filters

    @property
    def has_skip(self) -> bool:
        return self.skip == "identity"


def _skip(kind: str, first: bool, stride: int, filters_in: int, filters_out: int) -> str:
    if kind == "separable":
        return "none"
    if kind == "bottleneck" and first:
        return "projection"
    return "identity" if stride == 1 and filters_in == filters_out else "none"


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
    stem: str = "conv"
    stem_kernel: int = 3
    conv_bias: bool = False
    depthwise_name: str = "dwconv"  # the depthwise conv's layer name (DEPTHWISE_NAMES)

    @functools.cached_property
    def blocks(self) -> tuple[BlockConfig, ...]:
        total = sum(s.repeats for s in self.stages)
        blocks, index = [], 0
        for stage_number, stage in enumerate(self.stages, start=1):
            for j in range(stage.repeats):
                filters_in = stage.filters_in if j == 0 else stage.filters_out
                stride = stage.stride if j == 0 else 1
                se_filters = (max(1, int(filters_in * stage.se_ratio))
                              if stage.se_ratio else 0)
                skip = _skip(stage.kind, j == 0, stride, filters_in, stage.filters_out)
                blocks.append(BlockConfig(
                    name=f"block{stage_number}{_letters(j)}", kernel=stage.kernel, stride=stride,
                    filters_in=filters_in, filters_out=stage.filters_out,
                    expand_ratio=stage.expand_ratio, se_filters=se_filters,
                    drop_path_rate=(self.drop_path_rate * index / total
                                    if skip == "identity" else 0.0),
                    kind=stage.kind, skip=skip))
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
            f"  stem {self.stem} {self.stem_kernel}x{self.stem_kernel} s2 -> {self.stem_filters}",
            "  stage kind        kernel stride expand  se   repeats  filters",
        ]
        for i, s in enumerate(self.stages, start=1):
            expand = "-" if s.expand_ratio is None else s.expand_ratio
            se = "-" if s.se_ratio is None else f"{s.se_ratio:g}"
            lines.append(f"  {i:>5} {s.kind:<11} {s.kernel:>6} {s.stride:>6} {expand:>6} "
                         f"{se:>5} {s.repeats:>7}  {s.filters_in}->{s.filters_out}")
        head = (f"conv1x1 -> {self.head_filters}, " if self.head_filters else "")
        lines.append(f"  head {head}pool, dropout, dense")
        return "\n".join(lines)


def _letters(j: int) -> str:
    """Block suffix as keras.applications names them: a..z, then aa, ab, … for deep models."""
    out = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        out = chr(97 + r) + out
    return out


def round_filters(filters: float, width: float, rounding: str = "keep_90") -> int:
    """Scale a channel count and round it to a multiple of 8 (at least 8): with "keep_90"
    (EfficientNet's) never losing more than 10 %, with "nearest" (EfficientNetV2's) as it falls
    (16 × 1.2 = 19.2 is 24 with keep_90, 16 with nearest)."""
    scaled = filters * width
    rounded = max(DIVISOR, int(scaled + DIVISOR / 2) // DIVISOR * DIVISOR)
    if rounding == "keep_90" and rounded < 0.9 * scaled:
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
    bn_momentum: float | None = None,
    depth: float | None = None,
    width: float | None = None,
    resolution: float | None = None,
    drop_connect_rate: float | None = None,
    depth_rounding: str | None = None,
) -> ModelConfig:
    """Resolve a released variant, a compound-scaling coefficient φ, or explicit multipliers
    into a `ModelConfig`.

    Exactly one of `variant` ("b0".."b7", "lite0".."lite4", "v2-b0".."v2-b3", "v2-s",
    "v2-m", "v2-l"; also spelled "efficientnet-b0", "efficientnetv2-s"), `phi` (any real number that
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
    the scaled blocks). `base` is a name in `BASES` ("efficientnet", "lite", "efficientnetv2",
    "efficientnetv2-s", …), a `BaseNetwork`, or a stage table (a custom base).
    `bn_momentum` defaults to the base's (0.99; EfficientNetV2 0.9).
    `drop_connect_rate` is the deprecated name of `drop_path_rate`.
    `depth_rounding` is "nearest" (the default for φ and multipliers) or "ceil" (the
    reference's rounding, the default for released variants; the paper's Table 3 figures
    come from it).
    """
    drop_path_rate = renamed_argument("drop_connect_rate", drop_connect_rate,
                                      "drop_path_rate", drop_path_rate, 0.2)
    multipliers = {k: v for k, v in (("depth", depth), ("width", width),
                                     ("resolution", resolution)) if v is not None}
    rounding, base_net, res0 = _checked_arguments(
        variant, phi, multipliers, base, base_resolution, drop_path_rate, bn_momentum,
        {"alpha": alpha, "beta": beta, "gamma": gamma}, depth_rounding)
    if variant is not None:
        base_net, name, width, depth, resolution, dropout = _released(
            variant, base, base_net, base_resolution, dropout_rate)
    elif multipliers:
        name, width, depth, resolution, dropout = _explicit(multipliers, base_net, res0,
                                                            dropout_rate)
    else:
        name, width, depth, resolution, dropout = _compound(phi, alpha, beta, gamma, base_net,
                                                            res0, dropout_rate)
    if depth_rounding is not None and depth_rounding != ("ceil" if variant else "nearest"):
        name += f"-{depth_rounding}"  # another network than the default rounding's
    _check_fraction("dropout_rate", dropout)
    if resolution < MIN_RESOLUTION:
        raise ValueError(f"resolution {resolution} < {MIN_RESOLUTION}; raise base_resolution")
    stem, head, stages = _rounded_stages(base_net, width, depth, rounding)
    if bn_momentum is None:
        bn_momentum = base_net.bn_momentum
    return ModelConfig(
        name=name, base=base_net.name, phi=None if phi is None else float(phi),
        width=float(width), depth=float(depth), resolution=resolution,
        dropout_rate=float(dropout), drop_path_rate=float(drop_path_rate),
        activation=base_net.activation, stem_filters=stem, head_filters=head,
        stages=tuple(stages), preprocessing=base_net.preprocessing, bn_momentum=float(bn_momentum),
        bn_epsilon=base_net.bn_epsilon, stem=base_net.stem, stem_kernel=base_net.stem_kernel,
        conv_bias=base_net.conv_bias, depthwise_name=base_net.depthwise_name)


# `scale`'s steps, in the order a reader thinks in: check the arguments and resolve the base,
# resolve the multipliers (a released variant's, explicit ones, or φ's), round the stages.

def _checked_arguments(variant: Any, phi: Any, multipliers: dict[str, Any], base: Any,
                       base_resolution: Any, drop_path_rate: Any, bn_momentum: Any,
                       coefficients: dict[str, Any], depth_rounding: Any
                       ) -> tuple[str, BaseNetwork, int]:
    """Validate `scale`'s arguments; (depth rounding, base network, φ = 0 resolution)."""
    rounding = depth_rounding or ("ceil" if variant is not None else "nearest")
    if rounding not in ("nearest", "ceil"):
        raise ValueError(f"depth_rounding={depth_rounding!r}; accepted: None, 'nearest' or "
                         "'ceil'")
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
    if bn_momentum is not None and (not _is_real(bn_momentum) or not 0 < bn_momentum < 1):
        raise ValueError(f"bn_momentum={bn_momentum!r}; accepted: a number in (0, 1)")
    for label, value in coefficients.items():
        if not _is_real(value) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{label}={value!r}; accepted: a finite number > 0 "
                             f"(the paper uses alpha={ALPHA}, beta={BETA}, gamma={GAMMA})")
    paper = {"alpha": ALPHA, "beta": BETA, "gamma": GAMMA}
    changed = {k: v for k, v in coefficients.items() if v != paper[k]}
    if changed and phi is None:  # a variant's coefficients are published, multipliers explicit
        key = variant_key(variant) if variant is not None else None
        raise ValueError(f"{', '.join(f'{k}={v!r}' for k, v in changed.items())} applies only "
                         "with phi; " + (f"variant {variant!r} has published coefficients"
                                         if key else "the multipliers are explicit"))
    return rounding, base_net, res0


def _released(variant: str, base: Any, base_net: BaseNetwork, base_resolution: int | None,
              dropout_rate: float | None) -> tuple[BaseNetwork, str, float, float, int, float]:
    """A released variant's base, name, width, depth, resolution and dropout (its resolution
    scaled by the same factor as its base's when `base_resolution` is given)."""
    key = variant_key(variant)
    v = VARIANTS[key]
    if base != "efficientnet" and base_net.name != v.base:
        raise ValueError(f"variant {variant!r} has base {v.base!r}, but base={base!r} was "
                         "given; leave `base` out when naming a variant")
    base_net = BASES[v.base]
    resolution = (v.resolution if base_resolution is None else
                  int(round(v.resolution * base_resolution / base_net.resolution)))
    return (base_net, variant_name(key), v.width, v.depth, resolution,
            v.dropout_rate if dropout_rate is None else dropout_rate)


def variant_name(key: str) -> str:
    """A released variant's model name, keras.applications': efficientnet-b0,
    efficientnet-lite0, efficientnetv2-b0, efficientnetv2-s (`scale(name)` accepts it)."""
    return "efficientnet" + key if key.startswith("v2-") else f"efficientnet-{key}"


def _name_prefix(base_net: BaseNetwork) -> str:
    """Other families and EfficientNet's own bases name their models "<base>-…"
    (efficientnet-phi1, efficientnetv2-s-phi1); Lite and custom tables "efficientnet-<base>-…"."""
    return (f"{base_net.name}-" if base_net.name in FAMILIES or
            base_net.name.startswith("efficientnet") else f"efficientnet-{base_net.name}-")


def _explicit(multipliers: dict[str, float], base_net: BaseNetwork, res0: int,
              dropout_rate: float | None) -> tuple[str, float, float, int, float]:
    """Name, width, depth, resolution and dropout of explicit depth/width/resolution
    multipliers (those left out are 1)."""
    name = _name_prefix(base_net) + "-".join(f"{k[0]}{v:g}" for k, v in multipliers.items())
    what = ", ".join(f"{k}={v!r}" for k, v in multipliers.items())
    resolution = _rounded_resolution(res0 * multipliers.get("resolution", 1.0), what, None)
    return (name, multipliers.get("width", 1.0), multipliers.get("depth", 1.0), resolution,
            base_net.dropout if dropout_rate is None else dropout_rate)


def _compound(phi: Any, alpha: float, beta: float, gamma: float, base_net: BaseNetwork,
              res0: int, dropout_rate: float | None) -> tuple[str, float, float, int, float]:
    """Name, width, depth, resolution and dropout of compound scaling (Eq. 3): depth α^φ,
    width β^φ, resolution γ^φ; dropout grown with φ where the base says so."""
    if not _is_real(phi) or not math.isfinite(phi):
        raise ValueError(f"phi={phi!r}; accepted: a finite real number (e.g. 0, 1.5, -1)")
    try:
        depth, width = alpha ** phi, beta ** phi
        exact_res = res0 * gamma ** phi
    except OverflowError:
        raise ValueError(f"phi={phi!r} overflows the scaling coefficients") from None
    if not all(math.isfinite(x) and x > 0 for x in (depth, width, exact_res)):
        raise ValueError(f"phi={phi!r} gives depth={depth}, width={width}, "
                         f"resolution={exact_res}; accepted: a φ that keeps them finite")
    lowest = math.log(MIN_RESOLUTION / res0) / math.log(gamma) if gamma != 1 else None
    resolution = _rounded_resolution(exact_res, f"phi={phi!r}", lowest)
    grown = base_net.dropout + base_net.dropout_per_phi * phi
    dropout = (min(0.5, max(base_net.dropout, grown)) if base_net.dropout_per_phi
               else base_net.dropout) if dropout_rate is None else dropout_rate
    return f"{_name_prefix(base_net)}phi{phi:g}", width, depth, resolution, dropout


def _rounded_resolution(exact: float, what: str, lowest_phi: float | None) -> int:
    """`exact` to the nearest multiple of DIVISOR, at least MIN_RESOLUTION (else an error
    naming `what` gave it, and the smallest φ when known)."""
    resolution = int(round(exact / DIVISOR)) * DIVISOR
    if resolution < MIN_RESOLUTION:
        hint = (f"; the smallest φ for this base is about {lowest_phi:.2f}" if lowest_phi
                else "")
        raise ValueError(f"{what} gives resolution {resolution} < {MIN_RESOLUTION}{hint}")
    return resolution


def _rounded_stages(base_net: BaseNetwork, width: float, depth: float, rounding: str
                    ) -> tuple[int, int, list[StageSpec]]:
    """Stem width, head width and stage rows of `base_net` scaled by `width` and `depth`:
    channels to multiples of 8 as the reference rounds them, repeats by `rounding` (Lite keeps
    its stem, head and first and last stages' repeats)."""
    fixed, how = base_net.fix_stem_head, base_net.filter_rounding
    stem = base_net.stem_filters if fixed else round_filters(base_net.stem_filters, width, how)
    head = base_net.head_filters
    if not fixed and head and (width > 1 or not base_net.head_grows_only):
        head = round_filters(head, width, how)
    stages, feeding = [], stem
    last = len(base_net.stages) - 1
    for i, s in enumerate(base_net.stages):
        repeats = (s.repeats if fixed and i in (0, last)
                   else round_repeats(s.repeats, depth, nearest=rounding == "nearest"))
        out = (round_filters(s.filters_out // BOTTLENECK_EXPANSION, width, how)
               * BOTTLENECK_EXPANSION if s.kind == "bottleneck"
               else round_filters(s.filters_out, width, how))
        # The real tensor decides filters_in (Lite declares a scaled width the fixed stem lacks).
        stages.append(dataclasses.replace(s, repeats=repeats, filters_in=feeding, filters_out=out))
        feeding = out
    return stem, head, stages


def with_training(config: ModelConfig, *, dropout_rate: float | None = None,
                  drop_path_rate: float | None = None, bn_momentum: float | None = None,
                  bn_synchronized: bool | None = None) -> ModelConfig:
    """`config` with a training recipe's regularisation and batch-norm settings (None keeps
    the config's). These change how the network trains, not its architecture; `build` applies
    them when it builds (`keras_effnet.train` passes the recipe's)."""
    changes = {k: v for k, v in (("dropout_rate", dropout_rate),
                                 ("drop_path_rate", drop_path_rate),
                                 ("bn_momentum", bn_momentum),
                                 ("bn_synchronized", bn_synchronized)) if v is not None}
    for label in ("dropout_rate", "drop_path_rate"):
        if label in changes:
            _check_fraction(label, changes[label])
            changes[label] = float(changes[label])
    if "bn_momentum" in changes and (not _is_real(bn_momentum) or not 0 < bn_momentum < 1):
        raise ValueError(f"bn_momentum={bn_momentum!r}; accepted: a number in (0, 1)")
    if "bn_synchronized" in changes and not isinstance(bn_synchronized, bool):
        raise TypeError(f"bn_synchronized={bn_synchronized!r}; accepted: True or False")
    return dataclasses.replace(config, **changes) if changes else config


def _resolve_base(base: str | BaseNetwork | Sequence[Any]) -> BaseNetwork:
    if isinstance(base, BaseNetwork):
        return base
    if isinstance(base, str):
        if base not in BASES:
            near = difflib.get_close_matches(base, list(BASES), n=1, cutoff=0.4)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ValueError(f"base={base!r}{hint}; accepted: {', '.join(BASES)}, a "
                             "BaseNetwork, or a stage table")
        return BASES[base]
    if isinstance(base, Iterable):
        return BaseNetwork("custom", tuple(base))
    raise TypeError(f"base: got {type(base).__name__}; accepted: {sorted(BASES)}, "
                    "a BaseNetwork, or a stage table")


def variant_key(variant: Any) -> str:
    """The VARIANTS key of a variant's name in any accepted spelling: "b0", "efficientnet-b0",
    "EfficientNetB0", "v2-s", "efficientnetv2-s", "EfficientNetV2S" (case, "_" and "-" free),
    and so of a released model's name (`variant_name`); a ValueError listing them otherwise."""
    if not isinstance(variant, str):
        raise TypeError(f"variant={variant!r} ({type(variant).__name__}); accepted: one of "
                        f"{', '.join(VARIANTS)}")
    key = variant.strip().lower().replace("_", "-")
    for prefix in ("efficientnet-", "efficientnet"):
        key = key.removeprefix(prefix)
    if key.startswith("v2") and not key.startswith("v2-"):
        key = "v2-" + key[2:]
    if key not in VARIANTS:
        near = difflib.get_close_matches(key, list(VARIANTS), n=1, cutoff=0.4)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"unknown variant {variant!r}{hint} Accepted: {', '.join(VARIANTS)} "
                         "(also spelled efficientnet-b0, efficientnetv2-s, …)")
    return key


def _check_fraction(label: str, value: Any) -> None:
    if not _is_real(value) or not 0 <= value < 1:
        raise ValueError(f"{label}={value!r}; accepted: a number in [0, 1)")
