"""Compound scaling resolves to the published architectures (pure Python, no TensorFlow)."""

import subprocess
import sys

import pytest

import keras_effnet
from keras_effnet import profile, scale
from keras_effnet.scaling import StageSpec, round_filters

# Trainable parameters, 1000 classes: REFERENCE.md (keras.applications / the Lite unit test).
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


def test_scaling_does_not_import_tensorflow():
    code = ("import sys, keras_effnet as k; k.profile(k.scale('b7')); k.scale(phi=10); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


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
    """depth/width/resolution multipliers: 1, 1, 1 is φ = 0, (α, β, γ) is φ = 1, and a single
    dimension changes only itself (the rows of the paper's Tables 3 and 7)."""
    def body(cfg):
        return (cfg.stages, cfg.resolution, cfg.stem_filters, cfg.head_filters)

    assert body(scale(depth=1, width=1, resolution=1)) == body(scale(phi=0))
    assert body(scale(depth=1.2, width=1.1, resolution=1.15)) == body(scale(phi=1))
    base = scale(phi=0)
    deep = scale(depth=2.0)
    assert [s.repeats for s in deep.stages] == [2 * s.repeats for s in base.stages]
    assert [s.filters_out for s in deep.stages] == [s.filters_out for s in base.stages]
    assert deep.resolution == base.resolution
    wide = scale(width=2.0)
    assert [s.filters_out for s in wide.stages] == [2 * s.filters_out for s in base.stages]
    assert [s.repeats for s in wide.stages] == [s.repeats for s in base.stages]
    assert wide.resolution == base.resolution and wide.head_filters == 2 * base.head_filters
    sharp = scale(resolution=2.0)
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
    (dict(resolution=-1.0), r"resolution=-1.0; accepted"),
    (dict(width=True), r"width=True; accepted"),
    (dict(width=1.5, alpha=1.3), r"alpha=1.3 applies only with phi"),
    (dict(resolution=0.1), r"resolution 24 < 32"),
])
def test_bad_multipliers(kwargs, match):
    with pytest.raises(ValueError, match=match):
        scale(**kwargs)


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
