"""The architecture as data: a base network's stage table (`StageSpec`, `BaseNetwork`), a
released variant (`Variant`), and the one resolved description of a network (`ModelConfig`
and its `BlockConfig` rows) that building, profiling and exporting read.

Pure Python (no TensorFlow import). The bases and variants themselves are in
`keras_effnet.catalogue`; `keras_effnet.scaling.scale` turns them into `ModelConfig`s.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from typing import Any

from keras_effnet.checks import check_fraction, check_int, is_int, is_real, nearest
from keras_effnet.errors import InvalidArgument, InvalidType

MIN_RESOLUTION = 32  # the smallest input side, in pixels
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Old field names of saved configs, kept loading for one release.
RENAMED = {"dropout": "dropout_rate", "drop_connect_rate": "drop_path_rate",
           "drop_rate": "drop_path_rate"}


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
    near = nearest(kind, BLOCK_KINDS)
    hint = f"; did you mean {near!r}?" if near else ""
    raise InvalidArgument(f"unknown block kind {kind!r}{hint} Accepted: "
                          f"{', '.join(BLOCK_KINDS)}")


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
                    raise InvalidArgument(f"block kind {self.kind!r} takes no {field} (got "
                                          f"{value!r}); its fields: {', '.join(accepted)}")
            elif value is None:
                if takes[field] is REQUIRED:
                    raise InvalidArgument(f"block kind {self.kind!r} needs {field}")
                object.__setattr__(self, field, takes[field])

    def validate(self, where: str) -> None:
        """Refuse a row whose values no network can have; `where` names the row."""
        def bad(field: str, accepted: str) -> InvalidArgument:
            return InvalidArgument(f"{where}: {field}={getattr(self, field)!r}; accepted: "
                                   f"{accepted}")

        for field in ("kernel", "repeats", "filters_in", "filters_out", "expand_ratio"):
            if getattr(self, field) is not None or field != "expand_ratio":  # kinds without it
                check_int(field, getattr(self, field), 1, f"{where}: ")
        if self.kernel % 2 == 0:
            raise bad("kernel", "an odd integer")
        if self.stride not in (1, 2) or not is_int(self.stride):
            raise bad("stride", "1 or 2")
        if self.se_ratio is not None and (not is_real(self.se_ratio) or
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
            raise InvalidArgument(f"base network {self.name!r} has an empty stage table")
        for i, stage in enumerate(stages):
            stage.validate(f"base {self.name!r} stage {i + 1}")
        where, expected_in = f"base {self.name!r}: ", self.stem_filters
        for i, stage in enumerate(stages):
            if stage.filters_in != expected_in:
                raise InvalidArgument(
                    f"base {self.name!r} stage {i + 1}: filters_in={stage.filters_in} but the "
                    f"{'stem' if i == 0 else 'previous stage'} gives {expected_in}; "
                    "each stage's filters_in must equal the width feeding it")
            expected_in = stage.filters_out
        for field, accepted in (("activation", ACTIVATIONS), ("preprocessing", PREPROCESSINGS),
                                ("stem", STEMS), ("filter_rounding", FILTER_ROUNDINGS),
                                ("depthwise_name", DEPTHWISE_NAMES)):
            if getattr(self, field) not in accepted:
                raise InvalidArgument(f"{where}{field}={getattr(self, field)!r}; accepted: "
                                      f"{', '.join(accepted)}")
        for field, low in (("resolution", MIN_RESOLUTION), ("stem_filters", 1),
                           ("stem_kernel", 1), ("head_filters", 0)):
            check_int(field, getattr(self, field), low, where)
        check_fraction("bn_momentum", self.bn_momentum, low_open=True, where=where)


def _as_stage(row: Any, index: int) -> StageSpec:
    try:
        if isinstance(row, StageSpec):
            return row
        if isinstance(row, dict):
            unknown = sorted(set(row) - {f.name for f in dataclasses.fields(StageSpec)})
            if unknown:
                raise InvalidArgument(f"unknown field(s) {unknown}; accepted: "
                                      f"{', '.join(f.name for f in dataclasses.fields(StageSpec))}")
            return StageSpec(**row)
        if isinstance(row, (tuple, list)):
            return StageSpec(*row)
    except (TypeError, ValueError) as err:
        error = InvalidType if isinstance(err, TypeError) else InvalidArgument
        raise error(f"stage {index + 1}: {err}") from None
    raise InvalidType(f"stage {index + 1}: got {type(row).__name__}; accepted: StageSpec, "
                      "a dict of its fields, or a tuple (kernel, repeats, filters_in, "
                      "filters_out, expand_ratio, stride[, se_ratio[, kind]])")


@dataclass(frozen=True)
class Variant:
    """A released model: its name (keras.applications'), its base, its hand-picked coefficients
    and the figures published for it. Its `key` (in `catalogue.VARIANTS`) is the name less
    "efficientnet" and a hyphen: b0, lite0, v2-b0, v2-s."""

    name: str
    base: str
    width: float
    depth: float
    resolution: int
    dropout_rate: float
    # trainable parameters with the 1000-class head (docs/reference.md, "Released variants,
    # B0 to B7", "EfficientNet-Lite", "EfficientNetV2")
    params: int
    macs: float  # multiply-adds published by the paper / the Lite README
    top1: float  # ImageNet top-1 published (float model)
    note: str = ""  # why `macs` is not reproduced within 10 %, measured (empty: it is)

    @property
    def key(self) -> str:
        return self.name.removeprefix("efficientnet").lstrip("-")


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

