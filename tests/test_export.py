"""The export layer: artifacts run in the real LiteRT interpreter and onnxruntime."""

import json
import os

import keras
import numpy as np
import onnx
import pytest

import keras_effnet
from conftest import effnet
from keras_effnet.export import (VerificationError, to_onnx, to_saved_model, to_tflite,
                                 traced)
from keras_effnet.export.runtime import ONNXRunner, TFLiteRunner

RES = 32  # the tiny model's input size; b0's (large tier) is 48


@pytest.fixture(scope="module")
def small_models():
    """`small_models(name)`: the module's models, each built on first use. "tiny" is
    EfficientNet-Lite at φ=-6 (the Lite blocks and head, 32 px, 10 classes): the export
    layer's own checks. The trained lite0 itself goes through float TFLite and ONNX, verified,
    in the main job (test_quickstart.py); b0 (SE + swish, 48 px) is built for the large tier
    only."""
    built = {}

    def get(name):
        if name not in built:
            built[name] = (keras_effnet.build(keras_effnet.scale(phi=-6, base="lite"),
                                              num_classes=10, input_shape=(RES, RES, 3))
                           if name == "tiny" else
                           keras_effnet.build(name, num_classes=10, input_shape=(48, 48, 3)))
        return built[name]
    return get


# b0 (SE + swish, 36 s) in the large tier; SE + swish through export is in the default tier
# on test_int8_structure's tiny model
@pytest.mark.parametrize("variant", [pytest.param("b0", marks=pytest.mark.large), "tiny"])
def test_float_tflite_and_onnx_match_keras(variant, small_models, tmp_path, pixels):
    model = small_models(variant)
    size = model.input_shape[1]
    images = pixels(6, size, seed=3)
    expected = model.predict(images, verbose=0)
    with traced(model) as graph:  # both files from one trace (the quickstart's path)
        report = to_tflite(graph, tmp_path / "m.tflite", verify_data=images)
        assert report["passed"] and report["max_abs_diff"] <= 1e-4
        report = to_onnx(graph, tmp_path / "m.onnx", verify_data=images)
        assert report["passed"] and report["max_abs_diff"] <= 1e-4
        assert graph.exports == 1
    np.testing.assert_allclose(TFLiteRunner(str(tmp_path / "m.tflite"))(images), expected,
                               atol=1e-4)
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert len(graph.input) == 1
    runner = ONNXRunner(str(tmp_path / "m.onnx"))
    for batch in (1, 4):
        np.testing.assert_allclose(runner(images[:batch]), expected[:batch], atol=1e-4)
    saved = json.loads((tmp_path / "m.onnx.json").read_text())
    assert saved["metadata"]["input_shape"] == [size, size, 3] and saved["format"] == "onnx"


def test_saved_model_serves(small_models, tmp_path, pixels):
    import tensorflow as tf

    model = small_models("tiny")
    path = to_saved_model(model, tmp_path / "sm")
    loaded = tf.saved_model.load(path)
    out = loaded.serve(tf.constant(pixels(2, RES)))
    np.testing.assert_allclose(out.numpy(), model.predict(pixels(2, RES), verbose=0), atol=1e-5)


@pytest.mark.parametrize("data,match", [
    (np.zeros((4, 48, 48, 3), "float32"), r"shape \(4, 48, 48, 3\); the model takes images of \(32, 32, 3\)"),
    (np.zeros((0, 32, 32, 3), "float32"), r"representative_data is empty"),
    (np.array([["a"]]), r"dtype <U1"),
    (None, r"quantize='int8' needs representative_data"),
])
def test_bad_representative_data(data, match, small_models, tmp_path):
    with pytest.raises(ValueError, match=match):
        to_tflite(small_models("tiny"), tmp_path / "m.tflite", quantize="int8",
                  representative_data=data)
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("kwargs,match", [
    ({"quantize": "int4"}, r"quantize='int4'; accepted: none, float16, dynamic, int8"),
    ({"io_dtype": "uint8"}, r"io_dtype='uint8' needs quantize='int8'"),
    ({"io_dtype": "int16", "quantize": "int8"}, r"io_dtype='int16'"),
    ({"bias_correction": "no", "quantize": "int8"},
     r"bias_correction='no'; accepted: True or False"),
])
def test_bad_modes(kwargs, match, small_models, tmp_path):
    with pytest.raises(ValueError, match=match):
        to_tflite(small_models("tiny"), tmp_path / "m.tflite", **kwargs)


def test_bad_paths(small_models, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"output folder does not exist"):
        to_tflite(small_models("tiny"), tmp_path / "missing" / "m.tflite")
    with pytest.raises(ValueError, match=r"must end in .tflite"):
        to_tflite(small_models("tiny"), tmp_path / "m.bin")
    with pytest.raises(ValueError, match=r"opset=7"):
        to_onnx(small_models("tiny"), tmp_path / "m.onnx", opset=7)


def test_verification_reports_the_outputs_sqnr():
    from keras_effnet.export.verify import compare

    reference = np.array([[0.9, 0.05, 0.05], [0.34, 0.33, 0.33], [0.1, 0.8, 0.1]])
    noisy = reference + np.array([[-0.02, 0.01, 0.01], [-0.01, 0.01, 0.0], [0.0, -0.01, 0.01]])
    signal, noise = np.sum(reference ** 2), np.sum((noisy - reference) ** 2)
    assert compare(reference, noisy)["sqnr_db"] == pytest.approx(10 * np.log10(signal / noise))
    assert compare(reference, reference)["sqnr_db"] is None  # identical outputs
    cosine = np.mean(np.sum(reference * noisy, 1) / np.linalg.norm(reference, axis=1)
                     / np.linalg.norm(noisy, axis=1))
    assert compare(reference, noisy)["cosine_similarity"] == pytest.approx(cosine)


def test_near_ties_are_counted_and_decisive_images_gated():
    from keras_effnet.export.verify import THRESHOLDS, compare, failures

    # margins 0.85, 0.01, 0.004 (a near-tie that flips), 0.7
    reference = np.array([[0.9, 0.05, 0.05], [0.34, 0.33, 0.33], [0.497, 0.501, 0.002],
                          [0.1, 0.8, 0.1]])
    flipped = reference[:, [0, 2, 1]]  # classes 1 and 2 swapped: images 2 and 3 change
    report = compare(reference, flipped, near_tie_margin=0.05)
    assert report["margins"] == pytest.approx([0.85, 0.01, 0.004, 0.7])
    assert report["near_ties"] == 2 and report["decisive_images"] == 2
    assert report["top1_agreement"] == 0.5 and report["disagreeing_images"] == [2, 3]
    assert report["decisive_agreement"] == 0.5  # image 3 (margin 0.7) flipped, image 0 did not
    limits = {**THRESHOLDS["int8"], "near_tie_margin": 0.05, "min_decisive_images": 2}
    assert any("min_decisive_agreement" in f for f in failures(report, limits))
    # the same artifact, only the near-tie flipping: passes, though top-1 agreement is 0.75
    ties_only = reference.copy()
    ties_only[2] = [0.501, 0.497, 0.002]
    report = compare(reference, ties_only, near_tie_margin=0.05)
    assert report["top1_agreement"] == 0.75 and report["decisive_agreement"] == 1.0
    assert failures(report, limits) == []
    broken = reference.copy()
    broken[0, 0] = np.nan  # a NaN passes every comparison: caught on its own
    assert failures(compare(reference, broken), limits)[0] == "1 outputs are NaN or infinite"
    # logits become probabilities before the margin: softmax([2, 0]) margin
    logits = np.array([[2.0, 0.0], [0.0, -0.01]])
    assert compare(logits, logits, output="logits")["margins"] == pytest.approx(
        [np.tanh(1.0), np.tanh(0.005)], abs=1e-6)


def test_too_few_decisive_images_fail_unless_accepted():
    """A quantized artifact is judged on its decisive images: with fewer than
    min_decisive_images of them the verification fails, saying how many it had and naming
    both remedies; float kinds are judged by max |Δ| on every image and need none."""
    from keras_effnet.export.verify import THRESHOLDS, compare, failures, thresholds_for

    reference = np.tile([[0.9, 0.05, 0.05]], (29, 1))
    report = compare(reference, reference, near_tie_margin=0.1)
    (failure,) = failures(report, THRESHOLDS["int8"])
    assert "29 of the 29 verified" in failure and "min_decisive_images 30" in failure
    assert "verify_count=N" in failure and "min_decisive_images=0" in failure
    assert failures(report, thresholds_for("int8", {"min_decisive_images": 29})) == []
    assert failures(report, THRESHOLDS["none"]) == []
    more = compare(np.tile([[0.9, 0.05, 0.05]], (30, 1)), np.tile([[0.9, 0.05, 0.05]], (30, 1)))
    assert failures(more, THRESHOLDS["int8"]) == []
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="min_decisive_images=.*a whole number >= 0"):
            thresholds_for("int8", {"min_decisive_images": bad})


def test_collapsed_outputs_are_not_judged_on_sqnr():
    """An untrained model's outputs are near-constant: every image a near-tie. Its SQNR then
    measures the output quantizer against 1/classes (0 dB for 1000 classes in int8 however
    right the artifact), so it is reported and not gated; with decisive images it is."""
    from keras_effnet.export.verify import THRESHOLDS, compare, failures

    rng = np.random.default_rng(0)
    collapsed = np.full((8, 1000), 1e-3) + rng.uniform(-1e-5, 1e-5, (8, 1000))
    int8_like = np.round(collapsed * 256) / 256  # int8 softmax steps: all round to 0
    report = compare(collapsed, int8_like)
    assert report["decisive_images"] == 0 and report["decisive_agreement"] is None
    accepted = {**THRESHOLDS["int8"], "min_decisive_images": 0}  # the user accepts it unjudged
    assert report["sqnr_db"] < 1 and failures(report, accepted) == []
    (unjudged,) = failures(report, THRESHOLDS["int8"])  # by default: too few to judge
    assert unjudged.startswith("too few decisive images to judge: 0 of the 8 verified")
    decisive = np.eye(8, 1000) * 0.5 + 0.5 / 1000
    noisy = decisive + rng.normal(0, 0.02, decisive.shape)
    report = compare(decisive, noisy)
    assert report["decisive_images"] == 8 and report["sqnr_db"] < THRESHOLDS["int8"]["min_sqnr_db"]
    assert [f for f in failures(report, THRESHOLDS["int8"]) if "min_sqnr_db" in f]


@pytest.mark.large
def test_an_untrained_b0_passes_int8_verification_on_margins(tmp_path, pixels):
    """The latency case: an untrained 1000-class b0. Its outputs are constant (every class
    ~1e-3, below int8's output step of 1/256), so every image is a near-tie, the int8 file's
    top-1 agreement is chance, SQNR 0 dB whatever the file: verification passes it, counting
    the near-ties, once the user accepts an unjudged artifact (min_decisive_images=0); a
    plain top-1 gate would not. By default it fails: no decisive image to judge on."""
    from keras_effnet.export.verify import THRESHOLDS, failures

    keras.utils.set_random_seed(0)
    model = keras_effnet.build("b0", input_shape=(64, 64, 3))
    images = pixels(32, 64)
    report = to_tflite(model, tmp_path / "b0.tflite", "int8", representative_data=images,
                       verify_data=images, thresholds={"min_decisive_images": 0})
    assert report["passed"] and (tmp_path / "b0.tflite").exists()
    assert failures(report, THRESHOLDS["int8"])[0].startswith("too few decisive images")
    assert report["near_ties"] == 32 and report["decisive_agreement"] is None
    assert max(report["margins"]) < 0.01
    assert failures(report, {**report["thresholds"], "min_agreement": 0.9}), report  # old gate


@pytest.mark.parametrize("overrides,match", [
    ({"min_agreement": 1.5}, r"min_agreement=1.5; accepted: a number in \[0, 1\], or None "
                             r"\(not gated\)"),
    ({"min_sqnr_db": -3.0}, r"min_sqnr_db=-3.0; accepted: a number >= 0, or None \(not gated\)"),
    ({"near_tie_margin": float("nan")}, r"near_tie_margin=nan"),
    ({"max_abs_diff": True}, r"max_abs_diff=True"),
    ({"min_agreemnt": 0.9}, r"unknown threshold 'min_agreemnt'; accepted: max_abs_diff, "),
])
def test_bad_thresholds_fail_before_converting(overrides, match, small_models, tmp_path):
    from keras_effnet.export import thresholds_for

    with pytest.raises(ValueError, match=match):
        thresholds_for("int8", overrides)
    with pytest.raises(ValueError, match=match):  # before the (slow) conversion
        to_tflite(small_models("tiny"), tmp_path / "m.tflite", thresholds=overrides)
    assert not list(tmp_path.iterdir())


def test_thresholds_take_none_and_inf():
    from keras_effnet.export import THRESHOLDS, thresholds_for

    given = {"max_abs_diff": float("inf"), "min_sqnr_db": None, "min_agreement": 1}
    assert thresholds_for("float16", given) == {**THRESHOLDS["float16"], **given}
    with pytest.raises(ValueError, match=r"quantize='int4'; accepted: none, float16, dynamic"):
        thresholds_for("int4")


def test_failed_verification_leaves_only_its_report(small_models, tmp_path, pixels):
    path = tmp_path / "m.onnx"
    with pytest.raises(VerificationError, match=r"verification failed") as caught:
        to_onnx(small_models("tiny"), path, verify_data=pixels(4, RES),
                thresholds={"max_abs_diff": 1e-12})
    assert caught.value.report["max_abs_diff"] > 1e-12
    assert str(path) in str(caught.value) and ".staged" not in str(caught.value)
    assert ".tmp" not in str(caught.value)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx.failed.json"]
    kept = json.loads((tmp_path / "m.onnx.failed.json").read_text())
    assert kept["passed"] is False and kept["artifact"] == "m.onnx"
    assert isinstance(kept["disagreeing_images"], list)
    # a later export that passes writes the artifact and removes the stale failure report
    to_onnx(small_models("tiny"), path, verify_data=pixels(4, RES))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.json"]
    umask = os.umask(0)
    os.umask(umask)
    for name in ("m.onnx", "m.onnx.json"):  # created like any file of the user's (not 0600)
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


# large: 22-25 s; test_cli's export of a trained run covers the CLI path by default
@pytest.mark.large
def test_cli_export_prints_the_verification_table(small_models, tmp_path):
    keras_effnet.save_model(small_models("tiny"), tmp_path / "m.keras")
    result = effnet("export", f"--model={tmp_path / 'm.keras'}", "--format=onnx",
                    "--verify_data=synthetic?train=16&validation=16", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("[effnet export] verification data: synthetic?train=16&validation=16, validation "
            "split (--verify_data)") in result.stdout
    assert "[effnet export] converting to onnx" in result.stdout and "m.onnx" in result.stdout
    assert (tmp_path / "m.onnx").exists() and (tmp_path / "m.onnx.json").exists()
    report = json.loads((tmp_path / "m.onnx.json").read_text())
    assert report["verify_data"] == "synthetic?train=16&validation=16 (validation split)"
    (tmp_path / "bad.keras").write_bytes(b"PK\x03\x04 not really a zip")
    result = effnet("export", f"--model={tmp_path / 'bad.keras'}", "--verify_data=synthetic",
                    timeout=600)
    assert result.returncode == 2 and "is not a .keras model archive" in result.stderr
    assert not (tmp_path / "bad_none.tflite").exists()
