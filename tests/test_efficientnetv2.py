"""EfficientNetV2 (issue #23) through the export layer, and at full size.

Default tier: V2-B0's table at quarter depth, 32 px (Fused-MBConv with and without its
expansion, MBConv with SE with and without its residual, `dwconv2`, ImageNet mean/std inside)
through int8 PTQ with bias correction and ONNX, verified in LiteRT and onnxruntime. Large
tier: v2-b0 and v2-s through every path (float, fp16, dynamic, int8 PTQ, QAT, ONNX, with
metadata), the other five through int8 and ONNX, and the full-size graphs of all seven
against keras.applications'. Parameter counts and MACs of all seven are in test_scaling.py
(profile only), parity in test_parity.py.
"""

import collections
import gc

import keras
import numpy as np
import pytest

import keras_effnet
from keras_effnet.export import quantization_aware, to_onnx, to_tflite, traced
from keras_effnet.export.runtime import ONNXRunner, TFLiteRunner
from test_int8_structure import float_ops, ops_of

RES = 32
V2 = ["v2-b0", "v2-b1", "v2-b2", "v2-b3", "v2-s", "v2-m", "v2-l"]
# One step from random: every image is a near-tie, gated on nothing but its NaNs (as the
# tiny model of test_int8_structure.py); accuracy after int8 is measured on trained models.
UNTRAINED = {"min_decisive_agreement": None, "min_sqnr_db": None, "min_decisive_images": None}


def fitted(variant, classes=10, fit=True):
    """`variant` at RES px with `classes` outputs, fitted one step on the embedded synthetic
    set; and its 32 validation images. `fit=False` (v2-l's optimizer state alone is 1.9 GB):
    random weights, conditioned as a trained network's are (`conditioned`)."""
    from keras_effnet.data import load

    keras.backend.clear_session()  # the previous variant's graphs: M and L need 5-10 GB each
    gc.collect()
    keras.utils.set_random_seed(0)
    model = keras_effnet.build(variant, input_shape=(RES, RES, 3), num_classes=classes)
    data = load("synthetic?train=32&validation=32", resolution=RES, batch_size=32)
    images = np.concatenate([x for x, _ in data.validation.as_numpy_iterator()])
    if fit:
        model.compile("adam", "categorical_crossentropy")
        model.fit(data.train.take(1), epochs=1, verbose=0)
    else:
        conditioned(model, images)
    return model, images


def conditioned(model, images):
    """Random weights made as well-conditioned and as decisive as trained ones. A deep random
    network is chaotic: on v2-l the float rounding of TensorFlow and onnxruntime grows block by
    block, from 1e-7 after the stem to |Δ| 89 on the top features (of 392), and flips a third
    of the top-1s. Each residual branch's last batch-norm scale at 0.25 (SkipInit) keeps each
    block's output near its input, as training does; the classifier is scaled to logits of
    spread ~4, so that most images are decisive and the verification gates bite. v2-l then:
    31 of 32 images decisive, onnxruntime = Keras within 4.2e-6 (Keras at batch 1 against
    batch 32: 2.1e-6)."""
    residual = {layer.name.removesuffix("_add") for layer in model.layers
                if layer.name.endswith("_add")}
    for layer in model.layers:
        if layer.name.endswith("_project_bn") and layer.name.removesuffix("_project_bn") in \
                residual:
            layer.gamma.assign(np.full(layer.gamma.shape, 0.25, "float32"))
    head = model.get_layer("predictions")
    features = keras.Model(model.input, head.input).predict(images, verbose=0)
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 4 / (features @ kernel).std(), bias])


def _computation(proto):
    """What an ONNX graph computes, free of what varies between two runs of tf2onnx itself:
    each node's op and attributes in order, less the layout-only Reshapes (its transpose
    optimizer leaves 192-194 nodes on V2-B0 at half depth, run to run), and the bag of float
    initializers (the weights; names carry per-process counters)."""
    from onnx import numpy_helper

    nodes = [(n.op_type, len(n.input), [a.SerializeToString() for a in n.attribute])
             for n in proto.graph.node if n.op_type != "Reshape"]
    values = collections.Counter((a.shape, a.tobytes()) for a in
                                 (numpy_helper.to_array(t) for t in proto.graph.initializer)
                                 if a.dtype == np.float32)
    return nodes, values


# V2-B0's table at quarter depth: 7 blocks, each kind of half depth's 12 (Fused-MBConv with
# expansion 1 and 4, MBConv + SE as a stage's first block and as a residual block) and every
# V2 construct (half depth cost 2x; v2-b0 itself 5x: large)
def test_v2_int8_ptq_and_onnx_verified(tmp_path):
    """Random weights (every image a near-tie, as an untrained model's): what is checked is the
    path, the metadata, and an integer graph end to end; int8 and ONNX from one trace. The ONNX
    file is tf2onnx's own graph (export/onnx_conversion.py runs its steps in bounded memory):
    the same nodes and weights as `from_graph_def`'s, outputs equal bit for bit."""
    import onnx as onnx_lib
    import tf2onnx

    keras.utils.set_random_seed(0)
    model = keras_effnet.build(base="efficientnetv2", depth=0.25, input_shape=(RES, RES, 3),
                               num_classes=10)
    weighted = sum(isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                                      keras.layers.Dense)) for layer in model.layers)
    layers = {layer.name for layer in model.layers}
    blocks = {name.split("_")[0] for name in layers if name.startswith("block")}
    kinds = {(f"{b}_dwconv2" in layers, f"{b}_se_excite" in layers, f"{b}_expand_conv" in layers,
              f"{b}_add" in layers) for b in blocks}  # (MBConv, SE, expansion, residual)
    assert kinds == {(False, False, False, False), (False, False, True, False),
                     (True, True, True, False), (True, True, True, True)}, kinds
    images = np.random.default_rng(0).uniform(0, 255, (16, RES, RES, 3)).astype("float32")
    names = [f"class {i}" for i in range(10)]
    with traced(model) as graph:
        int8 = to_tflite(graph, tmp_path / "v2.tflite", "int8", representative_data=images,
                         calibration_steps=16, verify_data=images, labels=names,
                         thresholds=UNTRAINED)
        onnx = to_onnx(graph, tmp_path / "v2.onnx", verify_data=images, labels=names)
        graph_def, image, outputs = graph.frozen_graph()  # what to_onnx converted
    # every conv, depthwise conv and the classifier corrected (28 of them)
    assert int8["passed"] and int8["bias_correction"]["layers"] == weighted, int8
    assert int8["metadata"]["model"] == "efficientnetv2-d0.25"
    assert int8["tflite_metadata"]["output"] == "probabilities"
    flatbuffer = (tmp_path / "v2.tflite").read_bytes()
    assert float_ops(flatbuffer) == []
    ops = collections.Counter(name for name, _, _ in ops_of(flatbuffer))
    assert ops["QUANTIZE"] == 1 and ops["DEQUANTIZE"] == 1 and ops["DEPTHWISE_CONV_2D"] > 0
    assert onnx["passed"] and onnx["max_abs_diff"] <= 1e-4
    ours = ONNXRunner(str(tmp_path / "v2.onnx"))(images)
    np.testing.assert_allclose(ours[:2], model.predict(images[:2], verbose=0), atol=1e-4)
    theirs, _ = tf2onnx.convert.from_graph_def(
        graph_def, input_names=[image], output_names=[t for t, _ in outputs], opset=17)
    nodes, weights = _computation(onnx_lib.load(str(tmp_path / "v2.onnx")))
    assert (nodes, weights) == _computation(theirs)
    # not vacuous: a node per weighted layer and more (85), a kernel for each (34)
    assert len(nodes) > weighted and sum(weights.values()) >= weighted, (len(nodes), weights)
    onnx_lib.save(theirs, str(tmp_path / "theirs.onnx"))
    np.testing.assert_array_equal(ours, ONNXRunner(str(tmp_path / "theirs.onnx"))(images))


# 5-11 min each on 2 busy cores: B0's table and S's (the two input conventions); the other five
# share their blocks and go through int8 and ONNX below
@pytest.mark.large
@pytest.mark.parametrize("variant", ["v2-b0", "v2-s"])
def test_through_every_path(variant, tmp_path):
    """float, fp16, dynamic, int8 PTQ (bias-corrected), QAT int8 and ONNX, each verified in
    LiteRT / onnxruntime, with metadata and labels; int8 files integer end to end."""
    model, images = fitted(variant)
    names = [f"class {i}" for i in range(10)]
    with traced(model) as graph:
        for quantize in ("none", "float16", "dynamic", "int8"):
            path = tmp_path / f"{quantize}.tflite"
            report = to_tflite(graph, path, quantize, representative_data=images,
                               calibration_steps=32, verify_data=images, labels=names,
                               thresholds=UNTRAINED if quantize in ("dynamic", "int8") else None)
            assert report["passed"] and report["metadata"]["config"]["name"] == model.name
            assert report["tflite_metadata"]["output"] == "probabilities"
        assert report["bias_correction"]["layers"] > 50
        assert float_ops((tmp_path / "int8.tflite").read_bytes()) == []
        onnx = to_onnx(graph, tmp_path / "m.onnx", verify_data=images, labels=names)
        assert onnx["passed"] and onnx["max_abs_diff"] <= 1e-4
    np.testing.assert_allclose(ONNXRunner(str(tmp_path / "m.onnx"))(images[:2]),
                               model.predict(images[:2], verbose=0), atol=1e-4)
    np.testing.assert_allclose(TFLiteRunner(str(tmp_path / "none.tflite"))(images[:2]),
                               model.predict(images[:2], verbose=0), atol=1e-4)
    qat = quantization_aware(model, images)
    labels = keras.utils.to_categorical(np.arange(len(images)) % 10, 10)
    qat.fit(images, labels, batch_size=32, epochs=1, verbose=0)
    report = to_tflite(qat, tmp_path / "qat.tflite", "int8", representative_data=images,
                       calibration_steps=32, verify_data=images, labels=names,
                       thresholds=UNTRAINED)
    assert report["passed"] and float_ops((tmp_path / "qat.tflite").read_bytes()) == []
    assert (collections.Counter(n for n, _, _ in ops_of((tmp_path / "qat.tflite").read_bytes()))
            == collections.Counter(n for n, _, _ in ops_of((tmp_path / "int8.tflite")
                                                            .read_bytes())))


def _export(variant, kind, path):
    """One verified export of `fitted(variant, fit=False)` (int8 PTQ or ONNX); its report."""
    model, images = fitted(variant, fit=False)
    if kind == "int8":
        return to_tflite(model, path, "int8", representative_data=images, calibration_steps=32,
                         verify_data=images, thresholds=UNTRAINED)
    return to_onnx(model, path, verify_data=images)


# Each export in a fresh process: M and L (54 M, 118 M parameters) peak at 5.2 and 12.5 GB for
# ONNX (benchmarks/results/memory_onnx_large.md; tf2onnx's own from_graph_def was killed at
# 21 GB on M) and 10 GB for int8; one process doing both held 19.8 GB, and kept it.
@pytest.mark.large
@pytest.mark.parametrize("variant", ["v2-b1", "v2-b2", "v2-b3", "v2-m", "v2-l"])
def test_int8_and_onnx(variant, tmp_path):
    """The other five (random weights): bias-corrected int8 PTQ (integer end to end) and
    ONNX, verified in their runtimes, with metadata."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        int8 = pool.apply(_export, (variant, "int8", str(tmp_path / "int8.tflite")))
        onnx = pool.apply(_export, (variant, "onnx", str(tmp_path / "m.onnx")))
    assert onnx["passed"] and onnx["max_abs_diff"] <= 1e-4
    assert onnx["metadata"]["model"] == "efficientnet" + variant
    assert int8["passed"] and int8["metadata"]["model"] == "efficientnet" + variant
    assert int8["bias_correction"]["layers"] > 50
    assert float_ops((tmp_path / "int8.tflite").read_bytes()) == []


@pytest.mark.large
@pytest.mark.parametrize("variant", V2)
def test_full_size_graph_is_keras_applications(variant):
    """At the default input size, 1 000 classes: keras.applications' count_params() and its
    weighted layers, by name, class and shape (graphs built, not run); the profile agrees."""
    keras.backend.clear_session()
    name = variant.removeprefix("v2-").upper()
    ref = getattr(keras.applications, f"EfficientNetV2{name}")(weights=None)
    ours = keras_effnet.build(variant)
    assert ours.input_shape == ref.input_shape
    assert ours.count_params() == ref.count_params() == keras_effnet.profile(
        keras_effnet.scale(variant)).params

    def weighted(model):
        return {layer.name: (type(layer).__name__, [tuple(w.shape) for w in layer.weights])
                for layer in model.layers if layer.weights}

    assert weighted(ours) == weighted(ref)
