"""int8 and QAT files, structurally, on a tiny model that keeps the hard parts: SE + swish, and
every block kind (mbconv, separable, bottleneck) behind ResNet's stem (`tiny`).

What the graph must hold is checked at 32 px (seconds to convert): builtin ops only,
no float op between the input QUANTIZE and the output DEQUANTIZE, the int8 file's size, the
QAT file's op list equal to the PTQ file's, QAT's quantize configs and range start, and the
one-trace export path giving the same bytes as separate exports. Accuracy after quantization
is checked on the trained lite0 of the main job (test_quantization.py).

Each file is made once (`files`): the float and PTQ files from one trace, the PTQ file once
more from a lone conversion (its bytes are compared), the QAT file once with its labels and
metadata; the tests read them. Under pytest-xdist the tests of the tiny model share one
worker (`INT8_STRUCTURE`); the others go to either.
"""

import collections

import keras
import numpy as np
import pytest

import keras_effnet
from keras_effnet.export import quantization_aware, to_onnx, to_tflite, traced
from keras_effnet.export.runtime import ONNXRunner, TFLiteRunner
from keras_effnet.export.tflite import convert

RES = 32
# the tests that read `tiny` or `files`: one worker builds them once
INT8_STRUCTURE = pytest.mark.xdist_group("int8-structure")
UNJUDGED = {"min_decisive_agreement": None, "min_sqnr_db": None, "min_decisive_images": None}
QAT_LABELS = [f"class {i}" for i in range(10)]


@pytest.fixture(scope="module")
def tiny():
    """A user's table of every block kind (mbconv with SE + swish, separable, bottleneck)
    behind ResNet's padded 7×7 biased stem and max pool, 32 px, 10 classes, fitted one step on
    the embedded synthetic set; and its 64 validation images for calibration."""
    from keras_effnet.data import load
    from keras_effnet.scaling import BaseNetwork
    from test_families import MIXED

    net = BaseNetwork("mixed", MIXED, stem="conv_pool", stem_kernel=7, conv_bias=True)
    keras.utils.set_random_seed(0)
    model = keras_effnet.build(keras_effnet.scale(phi=0, base=net), input_shape=(RES, RES, 3),
                               num_classes=10)
    data = load("synthetic?train=64&validation=64", resolution=RES, batch_size=32)
    model.compile("adam", "categorical_crossentropy")
    model.fit(data.train.take(1), epochs=1, verbose=0)
    images = np.concatenate([x for x, _ in data.validation.as_numpy_iterator()])
    return model, images


@pytest.fixture(scope="module")
def files(tiny, tmp_path_factory):
    """The tiny model's files, each made once, and the reports of writing them:
    fp32 and int8 PTQ from one trace (`to_tflite` on `traced(model)`, verified, no metadata:
    the bytes `convert` gives), `separate`: the PTQ file of a lone `convert(model)` (which
    traces the bias-corrected copy), and int8 QAT (the twin fitted 1 step) with metadata and
    labels."""
    model, images = tiny
    folder = tmp_path_factory.mktemp("int8-structure")
    reports = {}
    with traced(model) as graph:
        reports["fp32"] = to_tflite(graph, folder / "fp32.tflite", verify_data=images,
                                    metadata=False)
        # One step from random every image is a near-tie (float top-1/top-2 margins ≤ 0.01):
        # verification counts them and gates nothing on them (min_decisive_images=0)
        reports["ptq"] = to_tflite(graph, folder / "ptq.tflite", "int8",
                                   representative_data=images, calibration_steps=32,
                                   verify_data=images, metadata=False,
                                   thresholds={"min_decisive_images": 0})
        exports = graph.exports
    separate = convert(model, "int8", images, 32)
    qat = quantization_aware(model, images)
    labels = keras.utils.to_categorical(np.arange(len(images)) % 10, 10)
    qat.fit(images, labels, batch_size=32, epochs=1, verbose=0)
    reports["qat"] = to_tflite(qat, folder / "qat.tflite", "int8", representative_data=images,
                               calibration_steps=32, verify_data=images[:8], labels=QAT_LABELS,
                               thresholds=UNJUDGED)
    return {**{key: (folder / f"{key}.tflite").read_bytes() for key in ("fp32", "ptq", "qat")},
            "separate": separate, "qat_model": qat, "qat_path": folder / "qat.tflite",
            "reports": reports, "exports": exports}


def ops_of(flatbuffer):
    """[(op name, input dtypes, output dtypes)] of a flatbuffer, in execution order."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(  # no delegate: the file's own ops, not XNNPACK's partitions
        model_content=flatbuffer,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    dtypes = {t["index"]: np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    return [(op["op_name"], [dtypes[i] for i in op["inputs"] if i >= 0],
             [dtypes[i] for i in op["outputs"]]) for op in interpreter._get_ops_details()]


def float_ops(flatbuffer):
    """Ops that compute in float: everything but the input QUANTIZE and output DEQUANTIZE
    touching a float tensor."""
    found = []
    for name, inputs, outputs in ops_of(flatbuffer):
        floats = [d for d in inputs + outputs if d.startswith("float")]
        if floats and name not in ("QUANTIZE", "DEQUANTIZE"):
            found.append((name, inputs, outputs))
        if name == "QUANTIZE" and outputs[0].startswith("float"):
            found.append((name, inputs, outputs))
        if name == "DEQUANTIZE" and inputs[0].startswith("float"):
            found.append((name, inputs, outputs))
    return found


@INT8_STRUCTURE
def test_ptq_int8_is_integer_builtin_and_small(files):
    ops = ops_of(files["ptq"])
    names = collections.Counter(name for name, _, _ in ops)
    assert not any("FLEX" in name or name == "CUSTOM" for name in names), names
    assert names["QUANTIZE"] == 1 and names["DEQUANTIZE"] == 1, names
    assert names["LOGISTIC"] > 0 and names["MEAN"] > 0, names  # swish and the SE squeeze
    assert float_ops(files["ptq"]) == []
    # tiny layers: per-channel scales and int32 biases weigh more than at full size (0.29×)
    assert len(files["ptq"]) <= 0.45 * len(files["fp32"])


@INT8_STRUCTURE
def test_input_normalisation_broadcasts_over_rows(files):
    """The converted graph normalises on (1, H, W·3) rows: the per-channel (3,) broadcast is
    XNNPACK's slow path (BUILD_NOTES.md, "Latency")."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    for key in ("fp32", "ptq", "qat"):
        interpreter = Interpreter(
            model_content=files[key],
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        shapes = {t["index"]: tuple(t["shape"]) for t in interpreter.get_tensor_details()}
        ops = interpreter._get_ops_details()
        names = [op["op_name"] for op in ops]
        start = names.index("RESHAPE")  # after the input QUANTIZE in int8 files
        # (x + offset/scale) · scale: the sum first, so whole pixels stay exact in int8
        assert names[:start] in ([], ["QUANTIZE"]) and names[start:start + 4] == [
            "RESHAPE", "ADD", "MUL", "RESHAPE"], (key, names[:6])
        for op in ops[start + 1:start + 3]:
            assert {shapes[i] for i in op["inputs"]} >= {(1, RES, RES * 3), (RES * 3,)}, key


@INT8_STRUCTURE
def test_qat_file_has_the_ptq_file_ops(files):
    """QAT int8 = PTQ int8 structurally: the same op list, no float op, no extra
    QUANTIZE/DEQUANTIZE (a requantize chain or a float island would add them)."""
    ptq = collections.Counter(name for name, _, _ in ops_of(files["ptq"]))
    qat = collections.Counter(name for name, _, _ in ops_of(files["qat"]))
    assert float_ops(files["qat"]) == []
    for name in ("QUANTIZE", "DEQUANTIZE"):
        assert qat[name] <= ptq[name], (qat, ptq)
    assert qat == ptq


@INT8_STRUCTURE
def test_qat_quantize_configs_and_range_start(tiny, files):
    model, images = tiny
    qat = files["qat_model"]
    names = {layer.name for layer in qat.layers}
    assert {"quant_rescaling", "quant_top_activation", "quant_block1a_se_excite"} <= names
    # the input range starts at the float model's on the representative images
    rescaled = keras.Model(model.inputs, model.get_layer("rescaling").output)(images).numpy()
    span = float(rescaled.max() - rescaled.min())
    ranges = {w.name.split("/")[-1].split(":")[0]: float(w.numpy())
              for w in qat.get_layer("quant_rescaling").weights}
    assert ranges["output_min"] == pytest.approx(min(0.0, rescaled.min()), abs=0.1 * span)
    assert ranges["output_max"] == pytest.approx(max(0.0, rescaled.max()), abs=0.1 * span)


# large: 33-44 s (separate exports again); the quickstart uses the one trace by default
@pytest.mark.large
@INT8_STRUCTURE
def test_one_trace_gives_the_artifacts_of_separate_exports(tiny, files, tmp_path):
    model, images = tiny
    with traced(model) as graph:
        assert graph.exports == 1
        assert convert(graph) == convert(model) == files["fp32"]
        assert convert(graph, "int8", images, 32) == files["separate"] == files["ptq"]
        onnx_report = to_onnx(graph, tmp_path / "m.onnx", verify_data=images)
        tflite_report = to_tflite(graph, tmp_path / "m.tflite", verify_data=images)
        assert graph.exports == 1  # nothing traced again
    separate = to_onnx(model, tmp_path / "separate.onnx", verify_data=images)
    # tf2onnx names and orders nodes per process: compare what the two graphs compute
    traced_onnx, separate_onnx = (ONNXRunner(str(tmp_path / name)) for name in
                                  ("m.onnx", "separate.onnx"))
    assert traced_onnx.input_name == separate_onnx.input_name == "image"
    np.testing.assert_allclose(traced_onnx(images), separate_onnx(images), rtol=0, atol=1e-7)
    assert max(onnx_report["max_abs_diff"], separate["max_abs_diff"]) <= 1e-4
    assert tflite_report["max_abs_diff"] <= 1e-4
    with pytest.raises(ValueError, match="closed"):
        convert(graph)
    with pytest.raises(TypeError, match="traced already"):
        traced(graph)
    runner = TFLiteRunner(str(tmp_path / "m.tflite"))
    np.testing.assert_allclose(runner(images[:2]), model.predict(images[:2], verbose=0),
                               atol=1e-5)


@INT8_STRUCTURE
def test_every_block_kind_exports_and_verifies(tiny, files):
    """The fixture's float and int8 files, verified as `to_tflite` wrote them (from one trace;
    the lone conversion's bytes are compared in
    test_corrected_values_written_into_the_trace_give_the_same_file)."""
    _, images = tiny
    fp32, int8 = files["reports"]["fp32"], files["reports"]["ptq"]
    # One step from random every image is a near-tie (float top-1/top-2 margins ≤ 0.01):
    # verification counts them and gates nothing on them. Its outputs barely depend on the
    # input, so even a wrongly calibrated file keeps their SQNR (41 dB measured for both,
    # BUILD_NOTES.md); a broken file is caught on a trained model (test_quantization.py).
    assert fp32["passed"] and int8["passed"]  # int8: unjudged, accepted
    assert fp32["max_abs_diff"] <= 1e-4 and fp32["top1_agreement"] == 1.0
    assert int8["near_ties"] == len(images) and int8["decisive_agreement"] is None, int8
    assert int8["sqnr_db"] >= 25, int8  # the output steps of int8 (1/256) at 0.1 per class
    names = collections.Counter(name for name, _, _ in ops_of(files["ptq"]))
    assert {"MAX_POOL_2D", "PAD", "DEPTHWISE_CONV_2D", "MUL", "LOGISTIC"} <= set(names), names


@pytest.mark.large
@pytest.mark.parametrize("base,multipliers", [
    ("resnet50", {"depth": 0.34, "width": 0.25}), ("mobilenet_v1", {"depth": 0.5, "width": 0.25}),
    ("mobilenet_v2", {"depth": 0.34, "width": 0.25})])
def test_each_family_quantizes_without_float_ops(base, multipliers):
    model = keras_effnet.build(keras_effnet.scale(base=base, **multipliers),
                               input_shape=(RES, RES, 3), num_classes=10)
    images = np.random.default_rng(0).uniform(0, 255, (16, RES, RES, 3)).astype("float32")
    qat = quantization_aware(model, images)
    ptq, qat_file = convert(model, "int8", images, 16), convert(qat, "int8", images, 16)
    assert float_ops(ptq) == [] and float_ops(qat_file) == []
    assert (collections.Counter(n for n, _, _ in ops_of(ptq)) ==
            collections.Counter(n for n, _, _ in ops_of(qat_file)))


@INT8_STRUCTURE
def test_bias_correction_rounds_weights_as_the_converter_does(tiny, files):
    """The rounding error the correction cancels is the converter's own: every correctable
    layer's simulated int8 kernel (batch norm folded in) is one of the flatbuffer's int8
    weight tensors, value for value (at most 0.1 % of the weights one step off: float32
    against float64 arithmetic at a half step). On the real ImageNet Lite0: 5 of 4.6 M live
    weights one step off (BUILD_NOTES.md)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from keras_effnet.export.bias_correction import correctable, folded_kernel, int8_weights
    from keras_effnet.export.graph import deployable

    interpreter = Interpreter(
        model_content=files["ptq"],
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    stored = []
    for detail in interpreter.get_tensor_details():
        scales = detail["quantization_parameters"]["scales"]
        if detail["dtype"] == np.int8 and len(scales) > 1:  # per-channel weights
            axis = detail["quantization_parameters"]["quantized_dimension"]
            shape = [1] * len(detail["shape"])
            shape[axis] = len(scales)
            stored.append(interpreter.get_tensor(detail["index"]) * scales.reshape(shape))
    layers = correctable(deployable(tiny[0]))
    kinds = collections.Counter(type(layer).__name__ + ("+BN" if norm else "")
                                for layer, norm in layers)
    assert {"Conv2D+BN", "DepthwiseConv2D+BN", "Conv2D", "Dense"} <= set(kinds), kinds
    as_ours = {4: lambda w: w.transpose(1, 2, 3, 0),  # OHWI -> HWIO; (1, kh, kw, C) is below
               2: lambda w: w.T}  # Dense (out, in) -> (in, out)
    weights = mismatched = 0
    for layer, norm in layers:
        folded = folded_kernel(layer, norm)
        step = np.abs(folded).max(axis=tuple(range(folded.ndim - 1))) / 127  # per channel
        simulated = int8_weights(folded)
        candidates = [(s[0] if folded.ndim == 3 else as_ours[s.ndim](s)) for s in stored
                      if s.size == simulated.size and s.ndim == (4 if folded.ndim == 3
                                                                 else folded.ndim)]
        errors = [np.abs(c - simulated) / np.maximum(step, 1e-30) for c in candidates
                  if c.shape == simulated.shape]
        assert errors, layer.name
        # channels whose weights are ~0 (dead) get a wider scale from the converter (their
        # bias must fit int32): both round them to ~0, so they are left out
        best = min(errors, key=lambda e: float(e.sum()))[..., step > 1e-5 * step.max()]
        # the converter folds and divides in float32, this in float64: a weight within float32
        # precision of a half step may round the other way, by exactly one step
        assert best.max() <= 1.001, (layer.name, best.max())
        weights, mismatched = weights + best.size, mismatched + int((best > 1e-3).sum())
    assert mismatched <= 1e-3 * weights, (mismatched, weights)


@INT8_STRUCTURE
def test_bias_correction_shifts_biases_only_on_a_copy(tiny):
    """The corrected model is a copy: the caller's model keeps its weights; in the copy only
    the batch norms' betas and the biases of layers without one move, and its float outputs
    stay close to the model's."""
    from keras_effnet.export.bias_correction import bias_corrected

    model, images = tiny
    before = [w.copy() for w in model.get_weights()]
    twin, summary, values = bias_corrected(model, images)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert summary["layers"] >= 10 and summary["max_shift"] > 0, summary
    moved = {w.path for w, a in zip(twin.weights, model.get_weights())
             if not np.array_equal(np.asarray(w), a)}
    assert {path.rsplit("/", 1)[-1] for path in moved} == {"beta", "bias"}, moved
    assert set(values) == moved and len(values) == summary["layers"]
    np.testing.assert_allclose(twin.predict(images[:8], verbose=0),
                               model.predict(images[:8], verbose=0), atol=0.05)


@pytest.mark.parametrize("kind", ["sequential", "no_preprocessing", "nested"])
def test_bias_correction_of_other_models(kind, tmp_path):
    """Any Keras model gets the correction through to a verified int8 file: a user's
    Sequential (conv + BN, depthwise + BN, Dense), an EfficientNet built without its input
    normalisation (the subclass itself is cloned, not a rebuilt graph), and that EfficientNet
    nested in a Sequential behind a Rescaling (every layer of both corrected)."""
    if kind == "sequential":
        keras.utils.set_random_seed(1)
        model = keras.Sequential([
            keras.Input((RES, RES, 3)), keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(8, 3, strides=2, use_bias=False), keras.layers.BatchNormalization(),
            keras.layers.ReLU(), keras.layers.DepthwiseConv2D(3, use_bias=False),
            keras.layers.BatchNormalization(), keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
        expected = 3
    else:
        model = keras_effnet.build(keras_effnet.scale(phi=-4, base="lite"),
                                   input_shape=(RES, RES, 3), num_classes=4,
                                   include_preprocessing=False)
        expected = sum(isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                                          keras.layers.Dense)) for layer in model.layers)
        if kind == "nested":
            model = keras.Sequential([keras.Input((RES, RES, 3)), keras.layers.Rescaling(1 / 255),
                                      model, keras.layers.Dense(3)])
            expected += 1
    images = np.random.default_rng(0).uniform(0, 1 if kind == "no_preprocessing" else 255,
                                              (16, RES, RES, 3)).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    report = to_tflite(model, tmp_path / "m.tflite", "int8", representative_data=images,
                       verify_data=images, thresholds={"min_decisive_agreement": None,
                                                       "min_sqnr_db": None,
                                                       "min_decisive_images": None})
    assert report["bias_correction"]["layers"] == expected, report["bias_correction"]
    assert report["bias_correction"]["max_shift"] > 0
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@INT8_STRUCTURE
def test_qat_file_carries_metadata_and_loads_in_mediapipe(tiny, files):
    """The QAT path writes the same image-classifier metadata as PTQ: MediaPipe Tasks opens
    the file and scores as the interpreter does."""
    from keras_effnet.export.mediapipe_client import check
    from keras_effnet.export.tflite_metadata import has_metadata, read_labels

    _, images = tiny
    path = str(files["qat_path"])
    assert files["reports"]["qat"]["tflite_metadata"]["output"] == "probabilities"
    assert has_metadata(path)
    assert read_labels(path) == QAT_LABELS
    result = check(path, images[:8])
    assert result["labels_agree"] and result["top1_agreement"] == 1.0
    assert result["max_score_diff"] <= result["output_step"]


@INT8_STRUCTURE
def test_corrected_values_written_into_the_trace_give_the_same_file(files):
    """From a traced model, the bias-corrected int8 file converts from the one SavedModel with
    the corrected values written into its checkpoint (no second trace); it is byte for byte
    the file converted from a trace of the corrected copy (what a lone `convert` does)."""
    assert files["reports"]["ptq"]["bias_correction"]["layers"] > 0
    assert files["exports"] == 1  # the float and the int8 file: one trace
    assert files["ptq"] == files["separate"]


@pytest.mark.large
@INT8_STRUCTURE
def test_corrected_values_written_into_a_nested_models_trace_give_the_same_outputs(tiny):
    """The same for the tiny model nested in a Sequential behind a Rescaling: the files differ
    in tensor names only (the copy's own layer names), so their outputs are compared."""
    model, images = tiny
    model = keras.Sequential([keras.Input((RES, RES, 3)), keras.layers.Rescaling(1.0),
                              model, keras.layers.Dense(3)])
    with traced(model) as graph:
        rewritten = convert(graph, "int8", images, len(images))
        assert graph.exports == 1
    retraced = convert(model, "int8", images, len(images))
    np.testing.assert_array_equal(TFLiteRunner(rewritten)(images), TFLiteRunner(retraced)(images))
