"""Built Keras graphs: sizes, outputs, serialisation, mixed precision."""

import keras
import numpy as np
import pytest

import keras_effnet
from keras_effnet import profile, scale
from keras_effnet.schema import StageSpec
from test_scaling import KERAS_APPLICATIONS_TOTAL, REFERENCE_PARAMS


def _trainable(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


@pytest.mark.parametrize("variant", REFERENCE_PARAMS)
def test_built_graph_parameter_counts(variant):
    keras.backend.clear_session()
    model = keras_effnet.build(variant)
    assert _trainable(model) == REFERENCE_PARAMS[variant]
    if variant in KERAS_APPLICATIONS_TOTAL:
        # keras.applications counts 7 more: its Normalization layer's mean, variance and count
        assert model.count_params() == KERAS_APPLICATIONS_TOTAL[variant] - 7
    assert model.input_shape == (None, scale(variant).resolution, scale(variant).resolution, 3)
    # the analytic profile of the config describes this very graph, layer by layer
    assert profile(model).layers == profile(scale(variant)).layers


def test_custom_stage_table_builds(pixels):
    table = [(3, 1, 32, 16, 1, 1, 0.25), (3, 2, 16, 24, 6, 2), StageSpec(5, 2, 24, 40, 6, 2)]
    config = scale(phi=0, base=table)
    model = keras_effnet.build(config, num_classes=3, input_shape=(32, 32, 3))
    assert _trainable(model) == profile(config, num_classes=3).trainable_params
    assert np.asarray(model(pixels(2, 32))).shape == (2, 3)
    backbone = keras_effnet.build(config, features_only=True)
    assert [(f["stride"], f["channels"]) for f in backbone.feature_info] == [
        (2, 16), (4, 24), (8, 40)]


def test_phi_model_builds_and_runs(pixels):
    model = keras_effnet.build(phi=-2, num_classes=7, input_shape=(48, 48, 3))
    out = np.asarray(model(pixels(2, 48)))
    assert out.shape == (2, 7)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert _trainable(model) == profile(scale(phi=-2), num_classes=7).trainable_params


def test_build_takes_scales_arguments_and_v2_b1_from_its_base():
    """`build` passes the network's arguments to `scale`, `depth_rounding` included: V2-B0's
    base at depth 1.1 with the reference's ceil rounding is V2-B1's network (the default,
    nearest, is another); the old `resolution=` multiplier keyword warns; a `ModelConfig`
    takes training settings only."""
    keras.backend.clear_session()
    model = keras_effnet.build(base="efficientnetv2", depth=1.1, depth_rounding="ceil")
    b1 = scale("v2-b1")
    assert model.effnet_config.stages == b1.stages
    assert _trainable(model) == keras_effnet.VARIANTS["v2-b1"].params
    assert model.count_params() == profile(b1).params
    assert scale(base="efficientnetv2", depth=1.1).stages != b1.stages
    table = [(3, 1, 32, 16, 1, 1)]
    with pytest.warns(DeprecationWarning, match="use resolution_multiplier="):
        half = keras_effnet.build(base=table, resolution=0.5, num_classes=2)
    assert half.input_shape == (None, 112, 112, 3)
    with pytest.raises(ValueError, match=r"pass a ModelConfig or the network's arguments "
                                         r"\(base, phi\), not both"):
        keras_effnet.build(half.effnet_config, phi=1, base="lite", dropout_rate=0.1)


@pytest.mark.parametrize("variant,channels", [("b0", [16, 24, 40, 112, 320]),
                                              ("lite0", [16, 24, 40, 112, 320])])
def test_features_only_strides_and_channels(variant, channels, pixels):
    backbone = keras_effnet.build(variant, features_only=True)
    info = backbone.feature_info
    assert [f["stride"] for f in info] == [2, 4, 8, 16, 32]
    assert [f["channels"] for f in info] == channels
    outputs = backbone(pixels(1, 64, 96))
    assert list(outputs) == [f["name"] for f in info]
    for f in info:
        assert outputs[f["name"]].shape == (1, 64 // f["stride"], 96 // f["stride"], f["channels"])


def test_features_of_a_scaled_backbone():
    info = keras_effnet.build(phi=2, features_only=True).feature_info
    cfg = scale(phi=2)
    assert [f["channels"] for f in info] == [cfg.stages[i].filters_out for i in (0, 1, 2, 4, 6)]


@pytest.mark.parametrize("pooling,shape", [(None, (1, 2, 3, 1280)), ("avg", (1, 1280)),
                                           ("max", (1, 1280))])
def test_no_top_with_pooling(pooling, shape, pixels):
    model = keras_effnet.build("b0", include_top=False, pooling=pooling)
    assert model.input_shape == (None, None, None, 3)
    # docs/reference.md, "Released variants, B0 to B7": B0 without top, less the normaliser's 7
    assert model.count_params() == 4_049_571 - 7
    assert tuple(model(pixels(1, 64, 96)).shape) == shape


def test_build_options_object_is_the_same_as_its_keywords():
    grouped = keras_effnet.build("lite0", options=keras_effnet.BuildOptions(
        num_classes=7, include_top=False, pooling="max"), dropout_rate=0.1)
    flat = keras_effnet.build("lite0", num_classes=7, include_top=False, pooling="max",
                              dropout_rate=0.1)
    assert grouped.build_options == flat.build_options
    assert grouped.effnet_config == flat.effnet_config and flat.effnet_config.dropout_rate == 0.1
    assert [w.shape for w in grouped.weights] == [w.shape for w in flat.weights]


@pytest.mark.parametrize("size", [(33, 33), (45, 77), (64, 32)])
def test_odd_and_non_square_inputs(size, pixels):
    model = keras_effnet.build("lite0", num_classes=5, input_shape=(*size, 3))
    assert tuple(model(pixels(2, *size)).shape) == (2, 5)
    # stride-2 "same" padding: every feature map is ceil(size / stride)
    assert model.get_layer("top_conv").output.shape[1:3] == tuple(-(-s // 32) for s in size)


def test_preprocessing_is_in_the_model(pixels):
    with_pre = keras_effnet.build("lite0", num_classes=3, input_shape=(32, 32, 3))
    without = keras_effnet.build("lite0", num_classes=3, input_shape=(32, 32, 3),
                                 include_preprocessing=False)
    without.set_weights(with_pre.get_weights())
    x = pixels(2, 32)
    np.testing.assert_allclose(np.asarray(with_pre(x)), np.asarray(without((x - 127) / 128)),
                               rtol=1e-5, atol=1e-6)
    assert not any("normalization" in l.name for l in with_pre.layers)


def test_keras_round_trip_safe_mode(tmp_path, pixels):
    from keras_effnet.artifacts import save_model

    model = keras_effnet.build(phi=-1, num_classes=4, input_shape=(40, 40, 3), name="tiny")
    path = tmp_path / "tiny.keras"
    save_model(model, path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = pixels(3, 40)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(loaded(x)))
    assert loaded.effnet_config == model.effnet_config and loaded.name == "tiny"
    assert not any(type(l).__name__ == "Lambda" for l in loaded.layers)


def test_keras_load_model_after_importing_the_registering_modules(tmp_path):
    """A fresh process imports the modules that define (and register) our Keras classes,
    `keras_effnet.model` and `keras_effnet.optim`, then runs plain `keras.saving.load_model`:
    the model class, our optimizer and its schedule are found. `import keras_effnet` alone
    registers nothing (it imports no Keras; docs/building.md)."""
    import subprocess
    import sys

    from keras_effnet.optim import make_optimizer
    from keras_effnet.recipe import Recipe

    path = tmp_path / "compiled.keras"
    model = keras_effnet.build("lite0", num_classes=3, input_shape=(32, 32, 3))
    model.compile(optimizer=make_optimizer(Recipe.named("paper"), 64, 10, 2, model),
                  loss="categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    model.save(path)
    code = ("import keras, keras_effnet.model, keras_effnet.optim\n"
            f"m = keras.saving.load_model({str(path)!r})\n"
            "print(type(m).__name__, type(m.optimizer).__module__, "
            "type(m.optimizer.learning_rate).__name__ if hasattr(m.optimizer, 'learning_rate') "
            "else '', m.effnet_config.name)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[:2] == ["EfficientNet", "keras_effnet.optim"], done.stdout
    assert done.stdout.split()[-1] == "efficientnet-lite0"


def test_backbone_round_trip(tmp_path, pixels):
    model = keras_effnet.build("lite0", features_only=True)
    model.save(tmp_path / "bb.keras")
    loaded = keras.saving.load_model(tmp_path / "bb.keras", safe_mode=True)
    x = pixels(1, 64)
    a, b = model(x), loaded(x)
    assert loaded.feature_info == model.feature_info
    for key in a:
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))


def test_mixed_precision_outputs_float32(pixels):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras_effnet.build("b0", num_classes=10, input_shape=(32, 32, 3))
        assert model.get_layer("top_conv").compute_dtype == "float16"
        out = model(pixels(2, 32))
        assert out.dtype == "float32"
        np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1.0, rtol=1e-3)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_custom_classifier_activation(pixels):
    model = keras_effnet.build("lite0", num_classes=3, input_shape=(32, 32, 3),
                               classifier_activation=None)
    out = np.asarray(model(pixels(4, 32)))
    assert not np.allclose(out.sum(axis=1), 1.0)
