"""Bad input gets a clear error that names the value and what is accepted."""

import h5py
import keras
import numpy as np
import pytest

import keras_effnet
from keras_effnet import BuildOptions, scale
from keras_effnet.errors import InvalidArgument, MissingFile


@pytest.mark.parametrize("kwargs,match", [
    ({"variant": "b9"}, r"unknown variant 'b9'.*did you mean 'b7'"),
    ({"variant": "lite5"}, r"unknown variant 'lite5'.*did you mean 'lite"),
    ({"variant": "b0", "phi": 1}, r"exactly one of `variant`.*`phi`"),
    ({}, r"exactly one of `variant`.*`phi`"),
    ({"phi": float("nan")}, r"phi=nan; accepted: a finite real number"),
    ({"phi": float("inf")}, r"phi=inf; accepted: a finite real number"),
    ({"phi": "2"}, r"phi='2'; accepted: a finite real number"),
    ({"phi": True}, r"phi=True; accepted"),
    ({"phi": -20}, r"resolution 16 < 32; the smallest φ for this base is about -13\.9"),
    ({"phi": 1, "alpha": 0}, r"alpha=0; accepted: a finite number > 0"),
    ({"phi": 1, "beta": -1.1}, r"beta=-1.1; accepted: a finite number > 0"),
    ({"phi": 1, "gamma": 0.0}, r"gamma=0.0; accepted"),
    ({"variant": "b0", "alpha": 0}, r"alpha=0; accepted: a finite number > 0"),
    ({"variant": "b3", "gamma": 1.3}, r"gamma=1.3 applies only with phi; variant 'b3'"),
    ({"phi": 1, "base_resolution": 16}, r"base_resolution=16; accepted: an integer >= 32"),
    ({"phi": 1, "dropout_rate": 1.0}, r"dropout_rate=1.0; accepted: a number in \[0, 1\)"),
    ({"phi": 1, "dropout_rate": -0.1}, r"dropout_rate=-0.1"),
    ({"phi": 1, "drop_path_rate": 1.5}, r"drop_path_rate=1.5"),
    ({"phi": 1, "base": "mobilenet"}, r"base='mobilenet' \(did you mean 'mobilenet_v[12]'\?\); "
                                      r"accepted: efficientnet, lite, mobilenet_v1"),
    ({"phi": 1, "base": [{"kind": "mbconvv", "kernel": 3, "repeats": 1, "filters_in": 32,
                          "filters_out": 16, "expand_ratio": 1}]},
     r"stage 1: unknown block kind 'mbconvv'; did you mean 'mbconv'\?"),
    ({"phi": 1, "base": [{"kind": "separable", "kernel": 3, "repeats": 1, "filters_in": 32,
                          "filters_out": 16, "expand_ratio": 6}]},
     r"stage 1: block kind 'separable' takes no expand_ratio \(got 6\); its fields: kernel"),
    ({"phi": 1, "base": [{"kind": "bottleneck", "kernel": 3, "repeats": 1, "filters_in": 32,
                          "filters_out": 64, "se_ratio": 0.25}]},
     r"block kind 'bottleneck' takes no se_ratio"),
    ({"phi": 1, "base": [{"kind": "mbconv", "kernel": 3, "repeats": 1, "filters_in": 32,
                          "filters_out": 16}]}, r"block kind 'mbconv' needs expand_ratio"),
    ({"phi": 1, "base": [{"kind": "bottleneck", "kernel": 3, "repeats": 1, "filters_in": 32,
                          "filters_out": 66}]}, r"filters_out=66; accepted: a multiple of 4"),
    ({"phi": 1, "base": [{"kernel": 3, "repeats": 1, "filters_in": 32, "filters_out": 16,
                          "expand": 6}]}, r"stage 1: unknown field\(s\) \['expand'\]"),
    ({"phi": 1, "depth_rounding": "floor"}, r"depth_rounding='floor'; accepted: None, "),
    ({"phi": 1, "base": [(3, 1, 32, 16, 1, 3)]}, r"stride=3; accepted: 1 or 2"),
    ({"phi": 1, "base": [(3, 1, 24, 16, 1, 1)]}, r"filters_in=24 but the stem gives 32"),
    ({"phi": 1, "base": [(4, 1, 32, 16, 1, 1)]}, r"kernel=4; accepted: an odd integer"),
    ({"phi": 1, "bn_momentum": 1.0}, r"bn_momentum=1.0; accepted: a number in \(0, 1\)"),
])
def test_scale_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        scale(**kwargs)


def test_variant_of_wrong_type():
    with pytest.raises(TypeError, match=r"variant=3 \(int\)"):
        scale(3)


@pytest.mark.parametrize("kwargs,match", [
    ({"num_classes": 0}, r"num_classes=0; accepted: an integer >= 1"),
    ({"num_classes": 2.5}, r"num_classes=2.5"),
    ({"input_shape": (16, 16, 3)}, r"input_shape=\(16, 16, 3\); accepted: .* >= 32"),
    ({"input_shape": (64, 64)}, r"input_shape=\(64, 64\)"),
    ({"input_shape": (64, 64, 1)}, r"normalises 3 RGB channels; pass include_preprocessing"),
    ({"pooling": "avg"}, r"pooling='avg' applies only with include_top=False"),
    ({"include_top": False, "pooling": "mean"}, r"pooling='mean'; accepted: None, 'avg'"),
    ({"weights": "imagenet", "num_classes": 10}, r"weights='imagenet' has a 1000-class "
     r"classifier; num_classes=10 needs skip_head=True"),
    ({"weights": 42}, r"weights=42; accepted: None or a path"),
    ({"num_clases": 10}, r"build\(\) got unexpected keyword\(s\) \['num_clases'\] \(did you "
     r"mean 'num_classes'\?\); accepted: .*base_resolution.*pooling"),
    ({"options": BuildOptions(), "num_classes": 10}, r"pass num_classes inside options= or as "
     r"keywords, not both"),
    ({"options": {"num_classes": 10}}, r"options=\{'num_classes': 10\}; accepted: a BuildOptions"),
])
def test_build_rejects(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        keras_effnet.build("b0", **kwargs)


def test_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"weights file not found: .*nope\.h5"):
        keras_effnet.build("b0", weights=tmp_path / "nope.h5")


@pytest.mark.parametrize("name,content", [("bad.h5", b"not an hdf5 file"),
                                          ("bad.keras", b"PK\x03\x04 truncated zip"),
                                          ("bad.weights.h5", b"\x89HDF\r\n\x1a\n garbage")])
def test_corrupt_weights_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidArgument, match=r"is not a readable Keras weights file"):
        keras_effnet.build("lite0", input_shape=(32, 32, 3), weights=path)


def test_hdf5_that_holds_no_weights(tmp_path):
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.attrs["something"] = 1
    with pytest.raises(ValueError, match=r"not a readable Keras weights file.*layer_names"):
        keras_effnet.build("lite0", input_shape=(32, 32, 3), weights=tmp_path / "empty.h5")


def test_weights_from_another_architecture_leave_model_untouched(tmp_path):
    keras_effnet.build("lite0", input_shape=(32, 32, 3)).save(tmp_path / "lite0.h5")
    with pytest.raises(ValueError, match=r"holds a different architecture"):
        keras_effnet.build("b0", input_shape=(32, 32, 3), weights=tmp_path / "lite0.h5")
    target = keras_effnet.build("lite1", input_shape=(32, 32, 3))
    before = [w.copy() for w in target.get_weights()]
    from keras_effnet.weights import load_weights
    with pytest.raises(InvalidArgument, match=r"different architecture"):
        load_weights(target, tmp_path / "lite0.h5")
    assert all(np.array_equal(a, b) for a, b in zip(before, target.get_weights()))


def test_different_head_needs_skip_head(tmp_path, pixels):
    source = keras_effnet.build("lite0", input_shape=(32, 32, 3))
    source.save(tmp_path / "lite0.keras")
    with pytest.raises(ValueError, match=r"classifier 'predictions' does not fit.*skip_head=True"):
        keras_effnet.build("lite0", num_classes=10, input_shape=(32, 32, 3),
                           weights=tmp_path / "lite0.keras")
    model = keras_effnet.build("lite0", num_classes=10, input_shape=(32, 32, 3),
                               weights=tmp_path / "lite0.keras", skip_head=True)
    np.testing.assert_array_equal(model.get_layer("top_conv").get_weights()[0],
                                  source.get_layer("top_conv").get_weights()[0])
    # a no-top model takes a full file's body
    body = keras_effnet.build("lite0", include_top=False, weights=tmp_path / "lite0.keras")
    assert body.get_layer("stem_conv").get_weights()[0].shape == (3, 3, 3, 32)


def test_profile_rejects_unknown_sizes_and_types():
    with pytest.raises(ValueError, match=r"fixed spatial input size"):
        keras_effnet.profile(keras_effnet.build("lite0", include_top=False))
    with pytest.raises(TypeError, match=r"ModelConfig or a built Keras model; got str"):
        keras_effnet.profile("b0")


def test_save_model_to_missing_folder(tmp_path):
    from keras_effnet.artifacts import save_model

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(MissingFile, match=r"output folder does not exist"):
        save_model(model, tmp_path / "no" / "m.keras")
    with pytest.raises(InvalidArgument, match=r"must end in .keras"):
        save_model(model, tmp_path / "m.h5")


@pytest.mark.parametrize("name,content", [("m.keras", b"junk"), ("m.h5", b"junk")])
def test_load_model_rejects_bad_files(tmp_path, name, content):
    with pytest.raises(MissingFile, match=r"model file not found"):
        keras_effnet.load_model(tmp_path / "absent.keras")
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InvalidArgument, match=r"is not a .keras model archive"):
        keras_effnet.load_model(tmp_path / name)
