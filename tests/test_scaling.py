"""Compound scaling resolves to the published architectures (pure Python, no TensorFlow)."""

import subprocess
import sys

import pytest

import keras_effnet
from keras_effnet import profile, scale
from keras_effnet.scaling import round_filters
from keras_effnet.schema import StageSpec

# Trainable parameters, 1000 classes: docs/reference.md, "Released variants, B0 to B7" and
# "EfficientNet-Lite" (keras.applications / the Lite unit test).
REFERENCE_PARAMS = {
    "b0": 5_288_548, "b1": 7_794_184, "b2": 9_109_994, "b3": 12_233_232, "b4": 19_341_616,
    "b5": 30_389_784, "b6": 43_040_704, "b7": 66_347_960, "lite0": 4_652_008,
    "lite1": 5_416_680, "lite2": 6_092_072, "lite3": 8_197_096, "lite4": 13_006_568}
# keras.applications EfficientNetB0..B7(weights=None).count_params(), incl. its 7 normaliser values.
KERAS_APPLICATIONS_TOTAL = {
    "b0": 5_330_571, "b1": 7_856_239, "b2": 9_177_569, "b3": 12_320_535, "b4": 19_466_823,
    "b5": 30_562_527, "b6": 43_265_143, "b7": 66_658_687}
PAPER_FLOPS = {"b0": 0.39e9, "b1": 0.70e9, "b2": 1.0e9, "b3": 1.8e9, "b4": 4.2e9, "b5": 9.9e9,
               "b6": 19e9, "b7": 37e9}
# EfficientNetV2 (docs/reference.md, "EfficientNetV2"): keras.applications 3.15
# EfficientNetV2*(weights=None), 1000 classes, (trainable params, count_params(), without the
# top); its B0-B3 normalise with constants (no weights), so count_params() is ours exactly.
# Published MACs at the default input: the authors' README (B0-B3), the paper's Table 7 (S, M, L).
V2_REFERENCE = {
    "v2-b0": (224, 7_139_704, 7_200_312, 5_919_312, 0.72e9),
    "v2-b1": (240, 8_141_052, 8_212_124, 6_931_124, 1.2e9),
    "v2-b2": (260, 10_096_086, 10_178_374, 8_769_374, 1.7e9),
    "v2-b3": (300, 14_358_406, 14_467_622, 12_930_622, 3.0e9),
    "v2-s": (384, 21_458_488, 21_612_360, 20_331_360, 8.8e9),
    "v2-m": (480, 54_139_356, 54_431_388, 53_150_388, 24e9),
    "v2-l": (480, 118_515_272, 119_027_848, 117_746_848, 53e9),
}


def test_scaling_does_not_import_tensorflow():
    """Scaling and profiling stay instant, for every base (the other families' too)."""
    code = ("import sys, keras_effnet as k\n"
            "for b in ('efficientnet', 'resnet50', 'mobilenet_v1', 'mobilenet_v2'):\n"
            "    k.profile(k.scale(phi=10, base=b)); k.feature_taps(k.scale(phi=10, base=b))\n"
            "k.profile(k.scale('b7'))\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("variant", REFERENCE_PARAMS)
def test_trainable_params_match_reference(variant):
    assert profile(scale(variant)).trainable_params == REFERENCE_PARAMS[variant]


@pytest.mark.parametrize("variant", KERAS_APPLICATIONS_TOTAL)
def test_total_params_match_keras_applications_less_normaliser(variant):
    assert profile(scale(variant)).params == KERAS_APPLICATIONS_TOTAL[variant] - 7


@pytest.mark.parametrize("variant", PAPER_FLOPS)
def test_macs_within_5_percent_of_paper(variant):
    macs = profile(scale(variant)).macs
    assert abs(macs / PAPER_FLOPS[variant] - 1) <= 0.05


def test_compound_scaling_grows_macs_by_alpha_beta2_gamma2():
    factor = 1.2 * 1.1 ** 2 * 1.15 ** 2  # ≈ 1.92, the paper's "≈ 2 per unit of φ"
    macs0 = profile(scale(phi=0)).macs
    for k in range(1, 5):
        ratio = profile(scale(phi=k)).macs / macs0
        assert abs(ratio / factor ** k - 1) <= 0.10, (k, ratio, factor ** k)


def test_phi_follows_equation_3():
    cfg = scale(phi=2)
    assert cfg.depth == pytest.approx(1.2 ** 2) and cfg.width == pytest.approx(1.1 ** 2)
    assert cfg.resolution == 296  # 224 · 1.15² = 296.24, to the nearest multiple of 8
    assert [s.repeats for s in cfg.stages] == [1, 3, 3, 4, 4, 6, 1]  # round(r·1.44)
    assert cfg.stages[-1].filters_out == round_filters(320, 1.21) == 384
    assert scale(phi=0).stages == scale("b0").stages


def test_negative_phi_scales_down_and_stays_valid():
    cfg = scale(phi=-3)
    assert cfg.resolution == 144 and all(s.repeats >= 1 for s in cfg.stages)
    assert all(s.filters_out >= 8 for s in cfg.stages)
    assert profile(cfg).macs < profile(scale(phi=0)).macs / 3


def test_custom_coefficients_and_base_resolution():
    cfg = scale(phi=1, alpha=1.0, beta=1.0, gamma=2.0, base_resolution=64)
    assert cfg.resolution == 128 and cfg.stages == scale("b0").stages
    assert scale("b3", base_resolution=112).resolution == 150


def test_lite_rules():
    lite3 = scale("lite3")
    assert lite3.stem_filters == 32 and lite3.head_filters == 1280
    assert lite3.stages[0].repeats == 1 and lite3.stages[-1].repeats == 1
    assert lite3.stages[0].filters_in == 32  # the real tensor, not the declared 40
    assert all(b.se_filters == 0 for b in lite3.blocks) and lite3.activation == "relu6"
    assert lite3.preprocessing == "lite"


def test_drop_path_grows_over_scaled_blocks_and_only_on_skips():
    cfg = scale("b4")
    n = len(cfg.blocks)
    for i, block in enumerate(cfg.blocks):
        expected = 0.2 * i / n if block.has_skip else 0.0
        assert block.drop_path_rate == pytest.approx(expected)
    assert max(b.drop_path_rate for b in cfg.blocks) < 0.2


def test_deep_models_name_blocks_beyond_z():
    names = [b.name for b in scale(phi=20).blocks if b.name.startswith("block6")]
    assert names[25:28] == ["block6z", "block6aa", "block6ab"]
    assert len(set(names)) == len(names)


def test_config_round_trips_and_prints():
    cfg = scale("lite2")
    assert keras_effnet.ModelConfig.from_dict(cfg.to_dict()) == cfg
    text = cfg.summary()
    assert "efficientnet-lite2" in text and "resolution=260" in text


def test_custom_stage_table():
    table = [(3, 1, 32, 16, 1, 1, 0.25), (3, 2, 16, 24, 6, 2), StageSpec(5, 1, 24, 40, 6, 2)]
    cfg = scale(phi=1, base=table)
    assert len(cfg.stages) == 3 and cfg.name == "efficientnet-custom-phi1"
    assert profile(cfg).trainable_params > 0


def test_variant_aliases():
    assert scale("EfficientNet-B2") == scale("b2") == scale("efficientnetb2")


def test_explicit_multipliers():
    """depth/width/resolution_multiplier: 1, 1, 1 is φ = 0, (α, β, γ) is φ = 1, and a single
    dimension changes only itself (the rows of the paper's Tables 3 and 7)."""
    def body(cfg):
        return (cfg.stages, cfg.resolution, cfg.stem_filters, cfg.head_filters)

    assert body(scale(depth=1, width=1, resolution_multiplier=1)) == body(scale(phi=0))
    assert body(scale(depth=1.2, width=1.1, resolution_multiplier=1.15)) == body(scale(phi=1))
    base = scale(phi=0)
    deep = scale(depth=2.0)
    assert [s.repeats for s in deep.stages] == [2 * s.repeats for s in base.stages]
    assert [s.filters_out for s in deep.stages] == [s.filters_out for s in base.stages]
    assert deep.resolution == base.resolution
    wide = scale(width=2.0)
    assert [s.filters_out for s in wide.stages] == [2 * s.filters_out for s in base.stages]
    assert [s.repeats for s in wide.stages] == [s.repeats for s in base.stages]
    assert wide.resolution == base.resolution and wide.head_filters == 2 * base.head_filters
    sharp = scale(resolution_multiplier=2.0)
    assert sharp.resolution == 448 and sharp.stages == base.stages
    lite = scale(width=2.0, base="lite")  # Lite keeps its fixed stem and head
    assert lite.stem_filters == 32 and lite.head_filters == 1280 and lite.name == (
        "efficientnet-lite-w2")
    # the profile sees it: width ×2 is ~4× the MACs, resolution ×2 ~4×, depth ×2 ~2×
    macs = profile(base).macs
    assert 3.5 < profile(wide).macs / macs < 4.5 and 3.5 < profile(sharp).macs / macs < 4.2
    assert 1.7 < profile(deep).macs / macs < 2.1


@pytest.mark.parametrize("kwargs, match", [
    (dict(phi=1, width=2.0), "exactly one of"),
    (dict(variant="b0", depth=1.1), "exactly one of"),
    (dict(width=0), r"width=0; accepted: a finite multiplier > 0"),
    (dict(depth=float("nan")), r"depth=nan; accepted"),
    (dict(resolution_multiplier=-1.0), r"resolution_multiplier=-1.0; accepted"),
    (dict(width=True), r"width=True; accepted"),
    (dict(width=1.5, alpha=1.3), r"alpha=1.3 applies only with phi"),
    (dict(resolution_multiplier=0.1), r"resolution 24 < 32"),
])
def test_bad_multipliers(kwargs, match):
    with pytest.raises(ValueError, match=match):
        scale(**kwargs)


def test_resolution_is_pixels_and_the_old_multiplier_keyword_warns():
    """`resolution` is pixels (a config's, `profile`'s); the multiplier is
    `resolution_multiplier`, and `resolution=` keeps meaning it for one release, with a
    DeprecationWarning naming the new keyword."""
    with pytest.warns(DeprecationWarning, match="resolution= is deprecated; use "
                                                "resolution_multiplier="):
        old = scale(resolution=2.0)
    assert old == scale(resolution_multiplier=2.0) and old.resolution == 448
    with pytest.raises(ValueError, match="pass resolution_multiplier= only"):
        scale(resolution=2.0, resolution_multiplier=2.0)
    assert profile(old, resolution=224).resolution == (224, 224)


def test_errors_are_the_packages_own_and_the_builtin_ones():
    from keras_effnet.errors import InvalidArgument, InvalidType

    with pytest.raises(InvalidArgument):
        scale(phi=float("nan"))
    with pytest.raises(InvalidType):
        scale(3)
    with pytest.raises(InvalidArgument, match=r"stage 1: unknown field"):
        scale(phi=0, base=[{"kernel": 3, "wide": 2}])
    with pytest.raises(InvalidType, match=r"stage 1: .*missing 3 required"):
        keras_effnet.BaseNetwork("mine", [{"kernel": 3}])


def test_names_split_out_of_scaling_still_import_from_it():
    import keras_effnet.scaling as scaling

    for name in ("ALPHA BASES VARIANTS TABLE3 FAMILIES MIN_RESOLUTION IMAGENET_MEAN IMAGENET_STD "
                 "PREPROCESSINGS BLOCK_KINDS StageSpec BaseNetwork BlockConfig ModelConfig Variant "
                 "PublishedScaling variant_key variant_name round_filters with_training "
                 "renamed_argument fold_keywords refuse_unknown is_int is_real "
                 "resolve_base").split():
        assert hasattr(scaling, name), name


def test_catalogue_names_its_variants_and_their_bases():
    from keras_effnet.catalogue import base_variant, variant_key

    assert [base_variant(b) for b in ("efficientnet", "lite", "efficientnetv2",
                                      "efficientnetv2-s", "resnet50")] == [
        "b0", "lite0", "v2-b0", "v2-s", None]
    for key, variant in keras_effnet.VARIANTS.items():
        assert variant.key == key and variant_key(variant.name) == key
        assert scale(key).name == variant.name


def test_renamed_arguments_still_work_with_a_warning():
    """dropout_rate / drop_path_rate are the names; drop_connect_rate (and configs saved with
    the old field names) keep working for one release."""
    import dataclasses

    from keras_effnet import ModelConfig
    from keras_effnet.recipe import Recipe

    with pytest.warns(DeprecationWarning, match="drop_connect_rate= is deprecated"):
        old = scale(phi=1, drop_connect_rate=0.3)
    assert old == scale(phi=1, drop_path_rate=0.3) and old.drop_path_rate == 0.3
    with pytest.warns(DeprecationWarning):
        assert Recipe(drop_connect_rate=0.1).drop_path_rate == 0.1
    assert "drop_connect_rate" not in dataclasses.asdict(Recipe())
    with pytest.raises(ValueError, match="pass drop_path_rate= only"):
        scale(phi=1, drop_connect_rate=0.3, drop_path_rate=0.1)
    saved = old.to_dict()  # a config as models saved before the rename hold it
    saved["dropout"], saved["drop_connect_rate"] = saved.pop("dropout_rate"), saved.pop(
        "drop_path_rate")
    assert ModelConfig.from_dict(saved) == old
    assert scale("b3").dropout_rate == 0.3 and "dropout_rate=0.3" in scale("b3").summary()


# ---- EfficientNetV2 (issue #23): counted from the profile, no graph built ----

@pytest.mark.parametrize("variant", V2_REFERENCE)
def test_efficientnetv2_params_equal_keras_applications(variant):
    resolution, trainable, total, no_top, _ = V2_REFERENCE[variant]
    config = scale(variant)
    assert config.resolution == resolution and config.name == "efficientnet" + variant
    counted = profile(config)
    assert (counted.trainable_params, counted.params) == (trainable, total)
    assert profile(config, include_top=False).params == no_top
    assert keras_effnet.VARIANTS[variant].params == trainable


def test_efficientnetv2_macs_within_10_percent_of_published_or_say_why():
    for variant, (*_, published) in V2_REFERENCE.items():
        v = keras_effnet.VARIANTS[variant]
        assert v.macs == published
        ratio = profile(scale(variant)).macs / v.macs
        assert 0.9 <= ratio <= 1.1 or v.note, (variant, ratio)


def test_efficientnetv2_rules():
    """What V2 takes from its bases: BN momentum 0.9, the depthwise name `dwconv2`, the stem as
    wide as stage 1's input, widths rounded to the nearest multiple of 8 (B3's stage 1 is 16
    wide, not V1's 24), ceil depth rounding for the released rows, x/128 − 1 for S/M/L."""
    b3 = scale("v2-b3")
    assert (b3.bn_momentum, b3.depthwise_name, b3.preprocessing) == (0.9, "dwconv2", "imagenet")
    assert b3.stem_filters == 40 and b3.head_filters == 1536
    assert [(s.filters_out, s.repeats) for s in b3.stages] == [
        (16, 2), (40, 3), (56, 3), (112, 5), (136, 7), (232, 12)]
    assert round_filters(16, 1.2, "nearest") == 16 and round_filters(16, 1.2) == 24
    assert [s.kind for s in b3.stages] == ["fused_mbconv"] * 3 + ["mbconv"] * 3
    assert [b.se_filters > 0 for b in b3.blocks] == [b.kind == "mbconv" for b in b3.blocks]
    s = scale("v2-s")
    assert (s.stem_filters, s.preprocessing, s.base) == (24, "efficientnetv2", "efficientnetv2-s")
    assert scale("v2-s", bn_momentum=0.99).bn_momentum == 0.99
    assert scale("v2-s", base_resolution=192).resolution == 192  # S's φ=0 input is 384
    assert scale("b0").bn_momentum == 0.99 and scale("b0").depthwise_name == "dwconv"
    assert max(b.drop_path_rate for b in s.blocks) < 0.2 == s.drop_path_rate
    phi = scale(phi=1, base="efficientnetv2")
    assert phi.name == "efficientnetv2-phi1" and phi.resolution == 256
    assert scale(phi=0, base="efficientnetv2").stages == scale("v2-b0").stages
    assert scale(width=1.2, base="efficientnetv2-s").name == "efficientnetv2-s-w1.2"


def test_efficientnetv2_spellings_and_unknown_names():
    for name in ("efficientnetv2-b0", "EfficientNetV2B0", "efficientnetv2_b0", "V2-B0"):
        assert scale(name) == scale("v2-b0")
    assert scale("EfficientNetV2-L") == scale("efficientnetv2-l") == scale("v2-l")
    for bad in ("v2-xl", "v2-b9", "efficientnetv2-xs"):
        with pytest.raises(ValueError) as caught:
            scale(bad)
        assert f"unknown variant {bad!r}" in str(caught.value)
        assert "Accepted: " + ", ".join(keras_effnet.VARIANTS) in str(caught.value)


def test_config_saved_before_efficientnetv2_loads():
    saved = scale("b1").to_dict()
    del saved["depthwise_name"]  # configs of models saved before the field existed
    assert keras_effnet.ModelConfig.from_dict(saved) == scale("b1")
    v2 = scale("v2-m")
    assert keras_effnet.ModelConfig.from_dict(v2.to_dict()) == v2


def test_every_preprocessing_kind_has_constants_and_a_formula():
    from keras_effnet.assembly import PREPROCESSING_FORMULAS, preprocessing_constants
    from keras_effnet.schema import PREPROCESSINGS

    assert set(PREPROCESSING_FORMULAS) == set(PREPROCESSINGS)
    scale_, offset = preprocessing_constants("efficientnetv2")  # S/M/L: x/128 − 1
    assert [255 * a + b for a, b in zip(scale_, offset)] == [255 / 128 - 1] * 3
    assert offset == [-1.0] * 3


@pytest.mark.parametrize("field,value,match", [
    ("bn_momentum", 1.5, r"bn_momentum=1.5; accepted: a number in \(0, 1\)"),
    ("filter_rounding", "up", r"filter_rounding='up'; accepted: keep_90, nearest"),
    ("depthwise_name", "dw", r"depthwise_name='dw'; accepted: dwconv, dwconv2"),
])
def test_base_network_fields_of_efficientnetv2_are_validated(field, value, match):
    import dataclasses

    with pytest.raises(ValueError, match=match):
        dataclasses.replace(keras_effnet.BASES["efficientnetv2"], **{field: value})
