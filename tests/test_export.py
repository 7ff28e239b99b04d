"""The export layer: artifacts run in the real LiteRT interpreter and onnxruntime."""

import json
import os

import numpy as np
import onnx
import pytest

import keras_effnet
from conftest import effnet
from keras_effnet.export import VerificationError, to_onnx, to_saved_model, to_tflite
from keras_effnet.export.runtime import ONNXRunner, TFLiteRunner


@pytest.fixture(scope="module")
def small_models():
    return {v: keras_effnet.build(v, num_classes=10, input_shape=(48, 48, 3)) for v in
            ("b0", "lite0")}


@pytest.mark.parametrize("variant", ["b0", "lite0"])
def test_float_tflite_and_onnx_match_keras(variant, small_models, tmp_path, pixels):
    model = small_models[variant]
    images = pixels(6, 48, seed=3)
    expected = model.predict(images, verbose=0)
    report = to_tflite(model, tmp_path / "m.tflite", verify_data=images)
    assert report["passed"] and report["max_abs_diff"] <= 1e-4
    np.testing.assert_allclose(TFLiteRunner(str(tmp_path / "m.tflite"))(images), expected,
                               atol=1e-4)
    report = to_onnx(model, tmp_path / "m.onnx", verify_data=images)
    assert report["passed"] and report["max_abs_diff"] <= 1e-4
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert len(graph.input) == 1
    runner = ONNXRunner(str(tmp_path / "m.onnx"))
    for batch in (1, 4):
        np.testing.assert_allclose(runner(images[:batch]), expected[:batch], atol=1e-4)
    saved = json.loads((tmp_path / "m.onnx.json").read_text())
    assert saved["metadata"]["input_shape"] == [48, 48, 3] and saved["format"] == "onnx"


def test_saved_model_serves(small_models, tmp_path, pixels):
    import tensorflow as tf

    path = to_saved_model(small_models["lite0"], tmp_path / "sm")
    loaded = tf.saved_model.load(path)
    out = loaded.serve(tf.constant(pixels(2, 48)))
    np.testing.assert_allclose(out.numpy(), small_models["lite0"].predict(pixels(2, 48), verbose=0),
                               atol=1e-5)


@pytest.mark.parametrize("data,match", [
    (np.zeros((4, 32, 32, 3), "float32"), r"shape \(4, 32, 32, 3\); the model takes images of \(48, 48, 3\)"),
    (np.zeros((0, 48, 48, 3), "float32"), r"representative_data is empty"),
    (np.array([["a"]]), r"dtype <U1"),
    (None, r"quantize='int8' needs representative_data"),
])
def test_bad_representative_data(data, match, small_models, tmp_path):
    with pytest.raises(ValueError, match=match):
        to_tflite(small_models["lite0"], tmp_path / "m.tflite", quantize="int8",
                  representative_data=data)
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("kwargs,match", [
    ({"quantize": "int4"}, r"quantize='int4'; accepted: none, float16, dynamic, int8"),
    ({"io_dtype": "uint8"}, r"io_dtype='uint8' needs quantize='int8'"),
    ({"io_dtype": "int16", "quantize": "int8"}, r"io_dtype='int16'"),
])
def test_bad_modes(kwargs, match, small_models, tmp_path):
    with pytest.raises(ValueError, match=match):
        to_tflite(small_models["lite0"], tmp_path / "m.tflite", **kwargs)


def test_bad_paths(small_models, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"output folder does not exist"):
        to_tflite(small_models["lite0"], tmp_path / "missing" / "m.tflite")
    with pytest.raises(ValueError, match=r"must end in .tflite"):
        to_tflite(small_models["lite0"], tmp_path / "m.bin")
    with pytest.raises(ValueError, match=r"opset=7"):
        to_onnx(small_models["lite0"], tmp_path / "m.onnx", opset=7)


def test_verification_reports_the_outputs_sqnr():
    from keras_effnet.export.verify import compare

    reference = np.array([[0.9, 0.05, 0.05], [0.34, 0.33, 0.33], [0.1, 0.8, 0.1]])
    noisy = reference + np.array([[-0.02, 0.01, 0.01], [-0.01, 0.01, 0.0], [0.0, -0.01, 0.01]])
    signal, noise = np.sum(reference ** 2), np.sum((noisy - reference) ** 2)
    assert compare(reference, noisy)["sqnr_db"] == pytest.approx(10 * np.log10(signal / noise))
    assert compare(reference, reference)["sqnr_db"] is None  # identical outputs


def test_failed_verification_leaves_only_its_report(small_models, tmp_path, pixels):
    path = tmp_path / "m.onnx"
    with pytest.raises(VerificationError, match=r"verification failed") as caught:
        to_onnx(small_models["lite0"], path, verify_data=pixels(4, 48),
                thresholds={"max_abs_diff": 1e-12})
    assert caught.value.report["max_abs_diff"] > 1e-12
    assert str(path) in str(caught.value) and ".staged" not in str(caught.value)
    assert ".tmp" not in str(caught.value)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx.failed.json"]
    kept = json.loads((tmp_path / "m.onnx.failed.json").read_text())
    assert kept["passed"] is False and kept["artifact"] == "m.onnx"
    assert isinstance(kept["disagreeing_images"], list)
    # a later export that passes writes the artifact and removes the stale failure report
    to_onnx(small_models["lite0"], path, verify_data=pixels(4, 48))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.json"]
    umask = os.umask(0)
    os.umask(umask)
    for name in ("m.onnx", "m.onnx.json"):  # created like any file of the user's (not 0600)
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_cli_export_prints_the_verification_table(small_models, tmp_path):
    keras_effnet.save_model(small_models["lite0"], tmp_path / "m.keras")
    result = effnet("export", f"--model={tmp_path / 'm.keras'}", "--format=onnx",
                    "--data=synthetic?train=16&validation=16", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[effnet export] converting to onnx" in result.stdout and "m.onnx" in result.stdout
    assert (tmp_path / "m.onnx").exists() and (tmp_path / "m.onnx.json").exists()
    (tmp_path / "bad.keras").write_bytes(b"PK\x03\x04 not really a zip")
    result = effnet("export", f"--model={tmp_path / 'bad.keras'}", timeout=600)
    assert result.returncode == 2 and "is not a .keras model archive" in result.stderr
    assert not (tmp_path / "bad_none.tflite").exists()
