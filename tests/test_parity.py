"""Our graph computes the same function as keras.applications, given identical weights.

keras.applications is built with random weights; its weights reach our model only through
weight files (all three formats the loader reads), by layer name / position. Its
`Normalization` layer is given ImageNet mean and variance, so both models see the same
preprocessing: (x/255 − mean)/std. Outputs are compared as logits.
"""

import keras
import numpy as np
import pytest

import keras_effnet
from keras_effnet.schema import IMAGENET_MEAN, IMAGENET_STD


def _reference(variant, size):
    keras.utils.set_random_seed(7)
    constructor = getattr(keras.applications, f"EfficientNet{variant.upper()}")
    # logits, not probabilities: softmax would squash differences below the tolerance
    ref = constructor(weights=None, input_shape=(size, size, 3), classifier_activation=None)
    norm = next(layer for layer in ref.layers if isinstance(layer, keras.layers.Normalization))
    norm.set_weights([np.array(IMAGENET_MEAN, "float32"),
                      np.square(np.array(IMAGENET_STD, "float32")), np.array(0, "int64")])
    norm.finalize_state()  # Normalization caches mean/variance when built
    return _randomised(ref, seed=1, perturb=False)


def _randomised(ref, seed=3, perturb=True):
    """Random BN statistics, so that a swapped mean/variance could not go unnoticed; with
    `perturb`, every other weight (biases included) moved too, so that a misread channel
    order cannot cancel out."""
    rng = np.random.default_rng(seed)
    for layer in ref.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
        elif perturb and layer.weights and not isinstance(layer, keras.layers.Dense):
            layer.set_weights([w + rng.normal(0, 0.01, w.shape) for w in layer.get_weights()])
    return ref


def _assert_same_function(ours, ref, x):
    a, b = np.asarray(ours(x)), np.asarray(ref(x))
    assert a.shape == b.shape
    rel = np.max(np.abs(a - b)) / np.max(np.abs(b))
    assert rel < 1e-5, f"relative difference {rel:.2e}"
    # and the models are not trivially constant
    assert np.std(b) > 0


@pytest.mark.parametrize("variant,size,fmt", [("b0", 64, "h5"), ("b0", 64, "weights.h5"),
                                              ("b3", 96, "keras")])
def test_same_function_as_keras_applications(variant, size, fmt, tmp_path, pixels):
    ref = _reference(variant, size)
    path = tmp_path / f"ref.{fmt}"
    if fmt == "weights.h5":
        ref.save_weights(path)
    else:
        ref.save(path)  # legacy HDF5 or .keras archive
    ours = keras_effnet.build(variant, input_shape=(size, size, 3), weights=path,
                              classifier_activation=None)
    x = pixels(3, size)
    _assert_same_function(ours, ref, x)
    # a fresh model (random weights) is a different function: the check has teeth
    fresh = keras_effnet.build(variant, input_shape=(size, size, 3), classifier_activation=None)
    b = np.asarray(ref(x))
    assert np.max(np.abs(np.asarray(fresh(x)) - b)) / np.max(np.abs(b)) > 1e-2


def test_backbone_without_top_matches(tmp_path, pixels):
    ref = _reference("b0", 64)
    ref.save(tmp_path / "ref.h5")
    ours = keras_effnet.build("b0", include_top=False, pooling="avg",
                              weights=tmp_path / "ref.h5")
    ref_features = keras.Model(ref.input, ref.get_layer("avg_pool").output)
    _assert_same_function(ours, ref_features, pixels(2, 64))


# ---- EfficientNetV2: keras.applications EfficientNetV2B0 … EfficientNetV2L ----

def _v2_reference(variant, size, probe):
    """keras.applications' EfficientNetV2 `variant` (its own preprocessing inside: B0-B3
    ImageNet mean/std as constants, S/M/L x/128 − 1), logits out, random BN statistics and
    weights; the classifier scaled so that the logits of `probe` have std 2 (random deep
    networks reach 1e4: a saturated softmax would compare nothing)."""
    keras.utils.set_random_seed(11)
    name = variant.removeprefix("v2-").upper()
    constructor = getattr(keras.applications, f"EfficientNetV2{name}")
    ref = _randomised(constructor(weights=None, input_shape=(size, size, 3),
                                  classifier_activation=None, include_preprocessing=True))
    dense = ref.get_layer("predictions")
    factor = 2 / np.std(np.asarray(ref(probe)))
    dense.set_weights([w * factor for w in dense.get_weights()])
    return ref


# v2-b0 (Fused-MBConv + MBConv, ImageNet mean/std) by name; v2-s (x/128 − 1) by position
@pytest.mark.parametrize("variant,size,fmt", [("v2-b0", 64, "h5"), ("v2-s", 64, "weights.h5")])
def test_efficientnetv2_same_function_as_keras_applications(variant, size, fmt, tmp_path,
                                                           pixels):
    x = pixels(3, size)
    ref = _v2_reference(variant, size, x)
    path = tmp_path / f"ref.{fmt}"
    ref.save_weights(path) if fmt == "weights.h5" else ref.save(path)
    ours = keras_effnet.build(variant, input_shape=(size, size, 3), weights=path,
                              classifier_activation=None)
    assert sorted(layer.name for layer in ours.layers if layer.weights) == sorted(
        layer.name for layer in ref.layers if layer.weights)
    _assert_same_function(ours, ref, x)
    probabilities = [np.asarray(keras.ops.softmax(model(x))) for model in (ours, ref)]
    assert np.max(np.abs(probabilities[0] - probabilities[1])) <= 1e-5
    assert 0.01 < np.max(probabilities[1]) < 0.99  # neither uniform nor saturated


# ---- Other families (paper Table 3): keras.applications MobileNet, MobileNetV2, ResNet50 ----

FAMILIES = {
    "mobilenet_v1": (keras.applications.MobileNet, keras.applications.mobilenet.preprocess_input),
    "mobilenet_v2": (keras.applications.MobileNetV2,
                     keras.applications.mobilenet_v2.preprocess_input),
    "resnet50": (keras.applications.ResNet50, keras.applications.resnet50.preprocess_input),
}


@pytest.mark.parametrize("base,size,fmt", [("mobilenet_v1", 64, "h5"),
                                           ("mobilenet_v1", 64, "weights.h5"),
                                           ("mobilenet_v2", 64, "keras"),
                                           ("mobilenet_v2", 64, "weights.h5"),
                                           ("resnet50", 64, "h5")])
def test_family_same_function_as_keras_applications(base, size, fmt, tmp_path, pixels):
    constructor, preprocess = FAMILIES[base]
    keras.utils.set_random_seed(5)
    ref = _randomised(constructor(weights=None, input_shape=(size, size, 3),
                                  classifier_activation=None))
    path = tmp_path / f"ref.{fmt}"
    ref.save_weights(path) if fmt == "weights.h5" else ref.save(path)
    ours = keras_effnet.build(base=base, phi=0, input_shape=(size, size, 3), weights=path,
                              classifier_activation=None)
    x = pixels(3, size)
    a = np.asarray(ours(x))
    b = np.asarray(ref(preprocess(x.copy())))  # their preprocessing outside, ours inside
    rel = np.max(np.abs(a - b)) / np.max(np.abs(b))
    assert a.shape == b.shape and rel < 1e-5, f"relative difference {rel:.2e}"
    assert np.std(b) > 0
    if base == "resnet50":  # the stem kernel was reversed to RGB: without that it differs
        flipped = np.asarray(ref(preprocess(x[..., ::-1].copy())))
        assert np.max(np.abs(a - flipped)) / np.max(np.abs(b)) > 1e-3


@pytest.mark.parametrize("base,application", [("mobilenet_v1", "MobileNet"),
                                              ("mobilenet_v2", "MobileNetV2"),
                                              ("resnet50", "ResNet50")])
def test_family_parameter_counts_at_224(base, application):
    """Graph-building only: the same parameter count and the same weighted layers."""
    ref = getattr(keras.applications, application)(weights=None)
    ours = keras_effnet.build(base=base, phi=0)
    assert ours.count_params() == ref.count_params()
    assert (sorted(type(layer).__name__ for layer in ours.layers if layer.weights and
                   layer.name != "predictions") ==
            sorted(type(layer).__name__ for layer in ref.layers if layer.weights and
                   layer.name not in ("conv_preds", "predictions")))


def test_family_backbone_without_top_matches(tmp_path, pixels):
    ref = _randomised(keras.applications.ResNet50(weights=None, include_top=False,
                                                  input_shape=(64, 64, 3), pooling="avg"))
    ref.save(tmp_path / "notop.h5")
    ours = keras_effnet.build(base="resnet50", phi=0, include_top=False, pooling="avg",
                              weights=tmp_path / "notop.h5")
    x = pixels(2, 64)
    a, b = np.asarray(ours(x)), np.asarray(ref(keras.applications.resnet50.preprocess_input(x.copy())))
    assert np.max(np.abs(a - b)) / np.max(np.abs(b)) < 1e-5
