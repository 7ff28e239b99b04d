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
from keras_effnet.scaling import IMAGENET_MEAN, IMAGENET_STD


def _reference(variant, size):
    keras.utils.set_random_seed(7)
    constructor = getattr(keras.applications, f"EfficientNet{variant.upper()}")
    # logits, not probabilities: softmax would squash differences below the tolerance
    ref = constructor(weights=None, input_shape=(size, size, 3), classifier_activation=None)
    norm = next(layer for layer in ref.layers if isinstance(layer, keras.layers.Normalization))
    norm.set_weights([np.array(IMAGENET_MEAN, "float32"),
                      np.square(np.array(IMAGENET_STD, "float32")), np.array(0, "int64")])
    norm.finalize_state()  # Normalization caches mean/variance when built
    # Random BN statistics, so that a swapped mean/variance could not go unnoticed.
    rng = np.random.default_rng(1)
    for layer in ref.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
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
