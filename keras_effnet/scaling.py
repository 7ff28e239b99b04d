"""Compound scaling: turn (variant | φ, α, β, γ, base) into one explicit, frozen model config.

Pure Python (no TensorFlow import), so configs can be resolved, printed, compared and
profiled instantly. Everything that builds or measures a model reads a `ModelConfig`;
nothing else recomputes scaling.

What it reads and writes lives beside it: the data types in `keras_effnet.schema`, the
published bases, variants and Table 3 rows in `keras_effnet.catalogue`, the argument checks in
`keras_effnet.checks`. Their names are importable from here too, as before the split.

Example:
    >>> from keras_effnet import scale
    >>> cfg = scale(phi=1)
    >>> cfg.resolution, round(cfg.width, 3), round(cfg.depth, 3)
    (256, 1.1, 1.2)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

from keras_effnet.catalogue import (BASES, FAMILIES, TABLE3_ROWS, VARIANTS,  # noqa: F401
                                    resolve_base, variant_key, variant_name)
from keras_effnet.checks import (check_fraction, check_int, check_positive,  # noqa: F401
                                 fold_keywords, is_int, is_real, refuse_unknown,
                                 renamed_argument)
from keras_effnet.errors import InvalidArgument, InvalidType
from keras_effnet.schema import (ACTIVATIONS, BLOCK_KINDS, BOTTLENECK_EXPANSION,  # noqa: F401
                                 DEPTHWISE_NAMES, FILTER_ROUNDINGS, IMAGENET_MEAN, IMAGENET_STD,
                                 MIN_RESOLUTION, PREPROCESSINGS, RENAMED, REQUIRED, STEMS,
                                 BaseNetwork, BlockConfig, ModelConfig, StageSpec, Variant)

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15  # the paper's grid-searched coefficients (Sec. 3.3)
DIVISOR = 8  # channel counts are rounded to multiples of this


@dataclass(frozen=True)
class PublishedScaling:
    """One row of the paper's Table 3 (`catalogue.TABLE3_ROWS`): a base scaled by explicit
    multipliers, with the FLOPs (multiply-adds) and top-1 the paper reports. `note` says how
    multipliers the paper does not state were found, or why a figure is not matched within
    10 %."""

    base: str
    label: str
    multipliers: tuple[tuple[str, float], ...]  # `scale`'s keywords; () is the baseline
    macs: float
    top1: float
    note: str = ""

    def config(self) -> ModelConfig:
        """The row's network: the reference's depth rounding (ceil), which the paper's FLOPs
        come from (with round-to-nearest the compound rows fall 10-14 % short)."""
        if not self.multipliers:
            return scale(phi=0, base=self.base)
        return scale(base=self.base, depth_rounding="ceil", **dict(self.multipliers))


TABLE3 = tuple(PublishedScaling(*row) for row in TABLE3_ROWS)


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
    resolution_multiplier: float | None = None,
    depth_rounding: str | None = None,
    resolution: float | None = None,
    drop_connect_rate: float | None = None,
) -> ModelConfig:
    """Resolve a released variant, a compound-scaling coefficient φ, or explicit multipliers
    into a `ModelConfig`.

    Exactly one of `variant` ("b0".."b7", "lite0".."lite4", "v2-b0".."v2-b3", "v2-s",
    "v2-m", "v2-l"; also spelled "efficientnet-b0", "efficientnetv2-s"), `phi` (any real number
    that keeps the network valid; φ < 0 scales down) and the multipliers `depth`, `width`,
    `resolution_multiplier` (each > 0; those left out are 1). For φ: depth = α^φ, width = β^φ,
    resolution multiplier = γ^φ. Either way each stage's repeats are rounded to the nearest
    integer (at least 1), channels to multiples of 8 as the reference does, and the resolution
    (pixels) base_resolution·r to the nearest multiple of 8. `scale(width=2.0)` is width-only
    scaling; `scale(depth=1.2, width=1.1, resolution_multiplier=1.15)` is `scale(phi=1)`.
    `base_resolution` (pixels; default: the base network's 224) is the φ = 0 resolution; a
    variant's is scaled by the same factor, so `scale("b3", base_resolution=112)` is B3 at 150 px.
    `dropout_rate` defaults to the variant's; for φ it grows linearly from 0.2 at φ = 0 to 0.5
    at φ = 7 (the paper's "0.2 for B0 to 0.5 for B7"), clipped to [0.2, 0.5].
    `drop_path_rate` is the stochastic-depth rate of the last block (it grows linearly over
    the scaled blocks). `base` is a name in `BASES` ("efficientnet", "lite", "efficientnetv2",
    "efficientnetv2-s", …), a `BaseNetwork`, or a stage table (a custom base).
    `bn_momentum` defaults to the base's (0.99; EfficientNetV2 0.9).
    `depth_rounding` is "nearest" (the default for φ and multipliers) or "ceil" (the
    reference's rounding, the default for released variants; the paper's Table 3 figures
    come from it; `scale(base="efficientnetv2", depth=1.1, depth_rounding="ceil")` has V2-B1's
    stages).
    Deprecated names, accepted for one release with a DeprecationWarning: `resolution` (the
    multiplier; `resolution_multiplier`), `drop_connect_rate` (`drop_path_rate`).
    """
    drop_path_rate = renamed_argument("drop_connect_rate", drop_connect_rate,
                                      "drop_path_rate", drop_path_rate, 0.2)
    resolution_multiplier = renamed_argument(
        "resolution", resolution, "resolution_multiplier", resolution_multiplier, None,
        "the same multiplier; `resolution` means pixels everywhere else")
    multipliers = {k: v for k, v in (("depth", depth), ("width", width),
                                     ("resolution_multiplier", resolution_multiplier))
                   if v is not None}
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
    check_fraction("dropout_rate", dropout)
    if resolution < MIN_RESOLUTION:
        raise InvalidArgument(f"resolution {resolution} < {MIN_RESOLUTION}; raise "
                              "base_resolution")
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
        raise InvalidArgument(f"depth_rounding={depth_rounding!r}; accepted: None, 'nearest' "
                              "or 'ceil'")
    given = [name for name, value in (("variant", variant), ("phi", phi)) if value is not None]
    if multipliers:
        given.append(", ".join(multipliers))
    if len(given) != 1:
        raise InvalidArgument("pass exactly one of `variant` (e.g. 'b0', 'lite2'), `phi` (a "
                              "real number) and the multipliers depth/width/"
                              f"resolution_multiplier; got variant={variant!r}, phi={phi!r}, "
                              + ", ".join(f"{k}={v!r}" for k, v in multipliers.items()))
    for label, value in multipliers.items():
        check_positive(label, value, "a finite multiplier > 0 (1 keeps the base network's)")
    base_net = resolve_base(base)
    res0 = base_net.resolution if base_resolution is None else base_resolution
    check_int("base_resolution", res0, MIN_RESOLUTION)
    check_fraction("drop_path_rate", drop_path_rate)
    if bn_momentum is not None:
        check_fraction("bn_momentum", bn_momentum, low_open=True)
    for label, value in coefficients.items():
        check_positive(label, value, f"a finite number > 0 (the paper uses alpha={ALPHA}, "
                       f"beta={BETA}, gamma={GAMMA})")
    paper = {"alpha": ALPHA, "beta": BETA, "gamma": GAMMA}
    changed = {k: v for k, v in coefficients.items() if v != paper[k]}
    if changed and phi is None:  # a variant's coefficients are published, multipliers explicit
        key = variant_key(variant) if variant is not None else None
        raise InvalidArgument(f"{', '.join(f'{k}={v!r}' for k, v in changed.items())} applies "
                              "only with phi; " + (f"variant {variant!r} has published "
                                                   "coefficients" if key else
                                                   "the multipliers are explicit"))
    return rounding, base_net, res0


def _released(variant: str, base: Any, base_net: BaseNetwork, base_resolution: int | None,
              dropout_rate: float | None) -> tuple[BaseNetwork, str, float, float, int, float]:
    """A released variant's base, name, width, depth, resolution and dropout (its resolution
    scaled by the same factor as its base's when `base_resolution` is given)."""
    v = VARIANTS[variant_key(variant)]
    if base != "efficientnet" and base_net.name != v.base:
        raise InvalidArgument(f"variant {variant!r} has base {v.base!r}, but base={base!r} was "
                              "given; leave `base` out when naming a variant")
    base_net = BASES[v.base]
    resolution = (v.resolution if base_resolution is None else
                  int(round(v.resolution * base_resolution / base_net.resolution)))
    return (base_net, v.name, v.width, v.depth, resolution,
            v.dropout_rate if dropout_rate is None else dropout_rate)


def _name_prefix(base_net: BaseNetwork) -> str:
    """Other families and EfficientNet's own bases name their models "<base>-…"
    (efficientnet-phi1, efficientnetv2-s-phi1); Lite and custom tables "efficientnet-<base>-…"."""
    return (f"{base_net.name}-" if base_net.name in FAMILIES or
            base_net.name.startswith("efficientnet") else f"efficientnet-{base_net.name}-")


def _explicit(multipliers: dict[str, float], base_net: BaseNetwork, res0: int,
              dropout_rate: float | None) -> tuple[str, float, float, int, float]:
    """Name, width, depth, resolution (pixels) and dropout of explicit depth / width /
    resolution_multiplier multipliers (those left out are 1)."""
    name = _name_prefix(base_net) + "-".join(f"{k[0]}{v:g}" for k, v in multipliers.items())
    what = ", ".join(f"{k}={v!r}" for k, v in multipliers.items())
    resolution = _rounded_resolution(res0 * multipliers.get("resolution_multiplier", 1.0),
                                     what, None)
    return (name, multipliers.get("width", 1.0), multipliers.get("depth", 1.0), resolution,
            base_net.dropout if dropout_rate is None else dropout_rate)


def _compound(phi: Any, alpha: float, beta: float, gamma: float, base_net: BaseNetwork,
              res0: int, dropout_rate: float | None) -> tuple[str, float, float, int, float]:
    """Name, width, depth, resolution (pixels) and dropout of compound scaling (Eq. 3): depth
    α^φ, width β^φ, resolution γ^φ times the base's; dropout grown with φ where the base says
    so."""
    if not is_real(phi) or not math.isfinite(phi):
        raise InvalidArgument(f"phi={phi!r}; accepted: a finite real number (e.g. 0, 1.5, -1)")
    try:
        depth, width = alpha ** phi, beta ** phi
        exact_res = res0 * gamma ** phi
    except OverflowError:
        raise InvalidArgument(f"phi={phi!r} overflows the scaling coefficients") from None
    if not all(math.isfinite(x) and x > 0 for x in (depth, width, exact_res)):
        raise InvalidArgument(f"phi={phi!r} gives depth={depth}, width={width}, "
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
        raise InvalidArgument(f"{what} gives resolution {resolution} < {MIN_RESOLUTION}{hint}")
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
    for label in ("dropout_rate", "drop_path_rate", "bn_momentum"):
        if label in changes:
            check_fraction(label, changes[label], low_open=label == "bn_momentum")
            changes[label] = float(changes[label])
    if "bn_synchronized" in changes and not isinstance(bn_synchronized, bool):
        raise InvalidType(f"bn_synchronized={bn_synchronized!r}; accepted: True or False")
    return dataclasses.replace(config, **changes) if changes else config


