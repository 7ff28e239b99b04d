"""What was published, as data: the base networks (EfficientNet, Lite, EfficientNetV2 and the
other families of the paper's Table 3), the released variants with their published figures,
and Table 3's rows; with the names each is looked up by (`variant_key`, `resolve_base`).

Pure Python (no TensorFlow import). `keras_effnet.scaling.scale` resolves these into
`ModelConfig`s; the field meanings are in `keras_effnet.schema`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

from keras_effnet.checks import nearest
from keras_effnet.errors import InvalidArgument, InvalidType
from keras_effnet.schema import BaseNetwork, StageSpec, Variant

_B0_STAGES = (
    StageSpec(3, 1, 32, 16, 1, 1),
    StageSpec(3, 2, 16, 24, 6, 2),
    StageSpec(5, 2, 24, 40, 6, 2),
    StageSpec(3, 3, 40, 80, 6, 2),
    StageSpec(5, 3, 80, 112, 6, 1),
    StageSpec(5, 4, 112, 192, 6, 2),
    StageSpec(3, 1, 192, 320, 6, 1),
)

# EfficientNetV2 (Tan & Le, 2021; keras.applications' efficientnet_v2.py, the authors'
# effnetv2_configs.py): 3×3 rows (kind, repeats, filters_in, filters_out, expand_ratio, stride),
# Fused-MBConv (F, no SE) then MBConv (M, SE 0.25); the stem as wide as stage 1's input; BN
# momentum 0.9; widths round to the nearest multiple of 8; the depthwise conv is `dwconv2`.
# V2-B0's table scales to B1-B3 like EfficientNet; S, M and L are tables of their own, with
# keras.applications' x/128 - 1 input.
F, M = "fused_mbconv", "mbconv"
_V2 = dict(bn_momentum=0.9, filter_rounding="nearest", depthwise_name="dwconv2")


def _v2_stages(*rows: tuple[str, int, int, int, int, int]) -> tuple[StageSpec, ...]:
    return tuple(StageSpec(3, n, c_in, c_out, e, s, kind=k) for k, n, c_in, c_out, e, s in rows)


# Bases of other families (paper Table 3): their models are named "<base>-…", not
# "efficientnet-…".
FAMILIES = ("mobilenet_v1", "mobilenet_v2", "resnet50")

BASES: dict[str, BaseNetwork] = {base.name: base for base in (
    BaseNetwork("efficientnet", _B0_STAGES),
    BaseNetwork("lite", tuple(dataclasses.replace(s, se_ratio=0.0) for s in _B0_STAGES),
                activation="relu6", fix_stem_head=True, preprocessing="lite"),
    # keras.applications.MobileNet(alpha=1.0): 13 depthwise-separable blocks, no head conv.
    BaseNetwork(
        "mobilenet_v1", tuple(StageSpec(3, n, c_in, c_out, stride=s, kind="separable")
                              for n, c_in, c_out, s in ((1, 32, 64, 1), (2, 64, 128, 2),
                                                        (2, 128, 256, 2), (6, 256, 512, 2),
                                                        (2, 512, 1024, 2))),
        head_filters=0, activation="relu6", preprocessing="tf", dropout=1e-3, dropout_per_phi=0),
    # keras.applications.MobileNetV2(alpha=1.0): the paper's (t, c, n, s) rows, no SE.
    BaseNetwork(
        "mobilenet_v2", tuple(StageSpec(3, n, c_in, c_out, t, s, 0.0)
                              for t, c_in, c_out, n, s in ((1, 32, 16, 1, 1), (6, 16, 24, 2, 2),
                                                           (6, 24, 32, 3, 2), (6, 32, 64, 4, 2),
                                                           (6, 64, 96, 3, 1), (6, 96, 160, 3, 2),
                                                           (6, 160, 320, 1, 1))),
        activation="relu6", preprocessing="tf", dropout=0.0, dropout_per_phi=0,
        head_grows_only=True),
    # keras.applications.ResNet50: v1 bottlenecks, stride on the first 1×1 conv, biased convs.
    BaseNetwork(
        "resnet50", tuple(StageSpec(3, n, c_in, c_out, stride=s, kind="bottleneck")
                          for n, c_in, c_out, s in ((3, 64, 256, 1), (4, 256, 512, 2),
                                                    (6, 512, 1024, 2), (3, 1024, 2048, 2))),
        stem_filters=64, head_filters=0, activation="relu", preprocessing="caffe", dropout=0.0,
        dropout_per_phi=0, stem="conv_pool", stem_kernel=7, conv_bias=True, bn_epsilon=1.001e-5),
    BaseNetwork("efficientnetv2", _v2_stages(
        (F, 1, 32, 16, 1, 1), (F, 2, 16, 32, 4, 2), (F, 2, 32, 48, 4, 2), (M, 3, 48, 96, 4, 2),
        (M, 5, 96, 112, 6, 1), (M, 8, 112, 192, 6, 2)), stem_filters=32, **_V2),
    BaseNetwork("efficientnetv2-s", _v2_stages(
        (F, 2, 24, 24, 1, 1), (F, 4, 24, 48, 4, 2), (F, 4, 48, 64, 4, 2), (M, 6, 64, 128, 4, 2),
        (M, 9, 128, 160, 6, 1), (M, 15, 160, 256, 6, 2)), resolution=384, stem_filters=24,
        preprocessing="efficientnetv2", **_V2),
    BaseNetwork("efficientnetv2-m", _v2_stages(
        (F, 3, 24, 24, 1, 1), (F, 5, 24, 48, 4, 2), (F, 5, 48, 80, 4, 2), (M, 7, 80, 160, 4, 2),
        (M, 14, 160, 176, 6, 1), (M, 18, 176, 304, 6, 2), (M, 5, 304, 512, 6, 1)),
        resolution=480, stem_filters=24, dropout=0.3, preprocessing="efficientnetv2", **_V2),
    BaseNetwork("efficientnetv2-l", _v2_stages(
        (F, 4, 32, 32, 1, 1), (F, 7, 32, 64, 4, 2), (F, 7, 64, 96, 4, 2), (M, 10, 96, 192, 4, 2),
        (M, 19, 192, 224, 6, 1), (M, 25, 224, 384, 6, 2), (M, 7, 384, 640, 6, 1)),
        resolution=480, stem_filters=32, dropout=0.4, preprocessing="efficientnetv2", **_V2),
)}

# The released variants, keyed by `Variant.key`. EfficientNetV2: params keras.applications',
# MACs the authors' README (B0-B3) and the paper's Table 7 (S, M, L), top-1 ImageNet-1k;
# dropout the authors' effnetv2_configs.
VARIANTS: dict[str, Variant] = {variant.key: variant for variant in (
    Variant("efficientnet-b0", "efficientnet", 1.0, 1.0, 224, 0.2, 5_288_548, 0.39e9, 77.1),
    Variant("efficientnet-b1", "efficientnet", 1.0, 1.1, 240, 0.2, 7_794_184, 0.70e9, 79.1),
    Variant("efficientnet-b2", "efficientnet", 1.1, 1.2, 260, 0.3, 9_109_994, 1.0e9, 80.1),
    Variant("efficientnet-b3", "efficientnet", 1.2, 1.4, 300, 0.3, 12_233_232, 1.8e9, 81.6),
    Variant("efficientnet-b4", "efficientnet", 1.4, 1.8, 380, 0.4, 19_341_616, 4.2e9, 82.9),
    Variant("efficientnet-b5", "efficientnet", 1.6, 2.2, 456, 0.4, 30_389_784, 9.9e9, 83.6),
    Variant("efficientnet-b6", "efficientnet", 1.8, 2.6, 528, 0.5, 43_040_704, 19e9, 84.0),
    Variant("efficientnet-b7", "efficientnet", 2.0, 3.1, 600, 0.5, 66_347_960, 37e9, 84.3),
    Variant("efficientnet-lite0", "lite", 1.0, 1.0, 224, 0.2, 4_652_008, 407e6, 75.1),
    Variant("efficientnet-lite1", "lite", 1.0, 1.1, 240, 0.2, 5_416_680, 631e6, 76.7),
    Variant("efficientnet-lite2", "lite", 1.1, 1.2, 260, 0.3, 6_092_072, 899e6, 77.6),
    Variant("efficientnet-lite3", "lite", 1.2, 1.4, 280, 0.3, 8_197_096, 1.44e9, 79.8),
    Variant("efficientnet-lite4", "lite", 1.4, 1.8, 300, 0.3, 13_006_568, 2.64e9, 81.5),
    Variant("efficientnetv2-b0", "efficientnetv2", 1.0, 1.0, 224, 0.2, 7_139_704, 0.72e9, 78.7),
    Variant("efficientnetv2-b1", "efficientnetv2", 1.0, 1.1, 240, 0.2, 8_141_052, 1.2e9, 79.8),
    Variant("efficientnetv2-b2", "efficientnetv2", 1.1, 1.2, 260, 0.3, 10_096_086, 1.7e9, 80.5),
    Variant("efficientnetv2-b3", "efficientnetv2", 1.2, 1.4, 300, 0.3, 14_358_406, 3.0e9, 82.1),
    Variant("efficientnetv2-s", "efficientnetv2-s", 1.0, 1.0, 384, 0.2, 21_458_488, 8.8e9, 83.9),
    Variant("efficientnetv2-m", "efficientnetv2-m", 1.0, 1.0, 480, 0.3, 54_139_356, 24e9, 85.1),
    Variant("efficientnetv2-l", "efficientnetv2-l", 1.0, 1.0, 480, 0.4, 118_515_272, 53e9, 85.7),
)}

_SAME_AS_V1 = ("not stated; MobileNetV1's d=1.4, w=1.2, r=1.3 (also Table 7's for B0) "
               "reproduce the paper's FLOPs")
_R50_STRIDE = ("keras.applications' ResNet-50 strides its first 1x1 conv: 3.86 B at 224 px; "
               "with the stride on the 3x3 conv (the paper's count) it is 4.09 B")
# The paper's Table 3, rows (base, label, multipliers as `scale` takes them, the FLOPs
# (multiply-adds) and top-1 it reports[, note]); `scaling.TABLE3` holds them as
# `PublishedScaling`s, which build each row's network.
TABLE3_ROWS = (
    ("mobilenet_v1", "baseline", (), 0.6e9, 70.6),
    ("mobilenet_v1", "w=2", (("width", 2.0),), 2.2e9, 74.2),
    ("mobilenet_v1", "r=2", (("resolution_multiplier", 2.0),), 2.2e9, 72.7),
    ("mobilenet_v1", "compound", (("depth", 1.4), ("width", 1.2), ("resolution_multiplier", 1.3)),
     2.3e9, 75.6),
    ("mobilenet_v2", "baseline", (), 0.3e9, 72.0),
    ("mobilenet_v2", "d=4", (("depth", 4.0),), 1.2e9, 76.8),
    ("mobilenet_v2", "w=2", (("width", 2.0),), 1.1e9, 76.4),
    ("mobilenet_v2", "r=2", (("resolution_multiplier", 2.0),), 1.2e9, 74.8),
    ("mobilenet_v2", "compound", (("depth", 1.4), ("width", 1.2), ("resolution_multiplier", 1.3)),
     1.3e9, 77.4, _SAME_AS_V1),
    ("resnet50", "baseline", (), 4.1e9, 76.0, _R50_STRIDE),
    ("resnet50", "d=4", (("depth", 4.0),), 16.2e9, 78.1,
     "missed (-11.5 %): 4x the blocks of [3, 4, 6, 3] is 3.72x the baseline's MACs (3.56x with "
     "the stride on the 3x3); the paper's row is 3.95x its baseline. " + _R50_STRIDE),
    ("resnet50", "w=2", (("width", 2.0),), 14.7e9, 77.7),
    ("resnet50", "r=2", (("resolution_multiplier", 2.0),), 16.4e9, 77.5),
    ("resnet50", "compound", (("depth", 1.4), ("width", 1.2), ("resolution_multiplier", 1.4)),
     16.7e9, 78.8, "not stated; d=1.4, w=1.2, r=1.4 is the 0.1-step triple nearest "
     "MobileNetV1's (1.4, 1.2, 1.3) that reproduces 16.7 B (1.3 gives 13.9 B)"),
)


def _squashed(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "")


# Every accepted spelling of each variant, squashed: its key and its model name in any case,
# with or without "-" and "_" (b0, efficientnet-b0, EfficientNetB0, v2-s, EfficientNetV2S, …).
_SPELLINGS = {_squashed(s): key for key, v in VARIANTS.items() for s in (key, v.name)}


def variant_key(variant: Any) -> str:
    """The VARIANTS key of a variant's name in any accepted spelling ("b0", "efficientnet-b0",
    "EfficientNetB0", "v2-s", "efficientnetv2-s", "EfficientNetV2S"), and so of a released
    model's name (`variant_name`); an error listing them otherwise."""
    if not isinstance(variant, str):
        raise InvalidType(f"variant={variant!r} ({type(variant).__name__}); accepted: one of "
                          f"{', '.join(VARIANTS)}")
    key = _SPELLINGS.get(_squashed(variant))
    if key is None:
        near = nearest(_squashed(variant), _SPELLINGS)
        hint = f"; did you mean {_SPELLINGS[near]!r}?" if near else ""
        raise InvalidArgument(f"unknown variant {variant!r}{hint} Accepted: "
                              f"{', '.join(VARIANTS)} (also spelled efficientnet-b0, "
                              "efficientnetv2-s, …)")
    return key


def variant_name(key: str) -> str:
    """A released variant's model name, keras.applications': efficientnet-b0,
    efficientnet-lite0, efficientnetv2-b0, efficientnetv2-s (`scale(name)` accepts it)."""
    return VARIANTS[key].name


def base_variant(base: str) -> str | None:
    """The key of the released variant that is φ = 0 of the base named `base` (the base's own
    width, depth and input size: b0, lite0, v2-b0, v2-s, …), or None."""
    return next((key for key, v in VARIANTS.items() if v.base == base and v.width == v.depth == 1
                 and v.resolution == BASES[base].resolution), None)


def resolve_base(base: str | BaseNetwork | Sequence[Any]) -> BaseNetwork:
    """The base network `base` stands for: a name in BASES, a BaseNetwork, or a stage table
    (rows as `StageSpec`s, dicts or tuples: a custom base named "custom")."""
    if isinstance(base, BaseNetwork):
        return base
    if isinstance(base, str):
        if base not in BASES:
            near = nearest(base, BASES)
            hint = f" (did you mean {near!r}?)" if near else ""
            raise InvalidArgument(f"base={base!r}{hint}; accepted: {', '.join(BASES)}, a "
                                  "BaseNetwork, or a stage table")
        return BASES[base]
    if isinstance(base, Iterable):
        return BaseNetwork("custom", tuple(base))
    raise InvalidType(f"base: got {type(base).__name__}; accepted: {sorted(BASES)}, "
                      "a BaseNetwork, or a stage table")
