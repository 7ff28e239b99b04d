"""The GPU delegate check of every TFLite file (export/gpu_compat.py): TensorFlow Lite's model
analyzer captured, the delegate's own op rules applied, the report's `gpu_delegate` entry and
`checked` line, and `target="gpu"` / `--target=gpu` refusing a file with a CPU fallback.
Tiny models at 32 px: each export converts in about a second."""

import json

import keras
import numpy as np
import pytest

from keras_effnet.export import VerificationError, to_tflite
from keras_effnet.export.gpu_compat import (analyzer_findings, analyzer_text, gpu_delegate,
                                            op_problem, rule_findings)


def head_model(activation):
    """Conv, pooling, a 10-class dense layer and `activation` on its output, at 32 px."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(10)(x)
    return keras.Model(inputs, keras.layers.Activation(activation)(x))


def flatbuffer(function, shape=(1, 8, 8, 3)):
    """A TFLite flatbuffer of a TensorFlow function (builtin ops only)."""
    import tensorflow as tf

    traced = tf.function(function, input_signature=[tf.TensorSpec(shape, tf.float32)])
    return tf.lite.TFLiteConverter.from_concrete_functions(
        [traced.get_concrete_function()], traced).convert()


NO_GATES = {"max_abs_diff": None, "min_sqnr_db": None}  # random weights: near-ties only


def test_a_file_with_an_op_the_gpu_lacks_is_flagged_and_one_without_is_passed(tmp_path, pixels):
    """A log-probability head (LOG_SOFTMAX: not among the GPU delegate's ops) falls back to the
    CPU; the same model with a softmax head runs wholly on the GPU delegate. Both pass
    verification (default target: reported, not gated)."""
    images = pixels(6, 32)
    passed = to_tflite(head_model("softmax"), tmp_path / "p.tflite", verify_data=images,
                       thresholds=NO_GATES)
    assert passed["gpu_delegate"]["runs_wholly_on_gpu"] is True
    assert passed["gpu_delegate"]["fallback_ops"] == []
    assert passed["checked"].endswith(
        f"; GPU delegate: all {passed['gpu_delegate']['ops']} ops on the GPU delegate "
        "(static check)")
    flagged = to_tflite(head_model("log_softmax"), tmp_path / "f.tflite", verify_data=images,
                        thresholds=NO_GATES)
    entry = flagged["gpu_delegate"]
    assert flagged["passed"] and entry["runs_wholly_on_gpu"] is False
    assert [(op["op"], op["why"]) for op in entry["fallback_ops"]] == [
        ("LOG_SOFTMAX", "Not supported op LOG_SOFTMAX")]
    assert entry["fallback_ops"][0]["index"] == entry["ops"] - 1  # the last op
    assert "not run on a GPU" in entry["checked"]
    assert ("GPU delegate: 1 of" in flagged["checked"]
            and "LOG_SOFTMAX (Not supported op LOG_SOFTMAX)" in flagged["checked"])
    saved = json.loads((tmp_path / "f.tflite.json").read_text())  # the report beside the file
    assert saved["gpu_delegate"] == entry


def test_target_gpu_refuses_a_cpu_fallback(tmp_path, pixels):
    images = pixels(4, 32)
    path = tmp_path / "m.tflite"
    with pytest.raises(VerificationError) as caught:
        to_tflite(head_model("log_softmax"), path, verify_data=images, thresholds=NO_GATES,
                  target="gpu")
    message = str(caught.value)
    assert "would fall back from the GPU delegate to the CPU (target='gpu')" in message
    assert "LOG_SOFTMAX (op " in message and "quantize='float16'" in message
    assert [p.name for p in tmp_path.iterdir()] == ["m.tflite.failed.json"]
    assert caught.value.report["target"] == "gpu"
    report = to_tflite(head_model("softmax"), path, "float16", verify_data=images,
                       thresholds=NO_GATES, target="gpu")  # float16: nothing falls back, written
    assert report["gpu_delegate"]["ops"] > 5  # with the DEQUANTIZE ops of its float16 weights
    assert report["passed"] and sorted(p.name for p in tmp_path.iterdir()) == [
        "m.tflite", "m.tflite.json"]
    with pytest.raises(ValueError, match=r"target='tpu'; accepted: cpu, gpu, or None"):
        to_tflite(head_model("softmax"), path, target="tpu")


def test_effnet_export_target_gpu_refuses_in_one_line(tmp_path, capsys):
    from keras_effnet.cli.main import main

    model = tmp_path / "m.keras"
    head_model("log_softmax").save(model)
    capsys.readouterr()
    code = main(["effnet", "export", f"--model={model}", "--target=gpu", "--max_abs_diff=inf",
                 "--min_sqnr_db=0", "--verify_data=synthetic?train=8&validation=8",
                 "--verify_count=4"])
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert err.startswith(f"effnet export: error: {tmp_path / 'm_none.tflite'}: verification "
                          "failed: 1 of ")
    assert "LOG_SOFTMAX (op " in err and "--quantize=float16" in err and "--target=gpu" in err
    assert len(err.strip().splitlines()) == 1
    assert " 1 CPU  NO" in out  # the table's GPU column
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras", "m_none.tflite.failed.json"]
    code = main(["effnet", "export", f"--model={model}", "--format=onnx", "--target=gpu",
                 "--verify_data=synthetic"])
    assert code == 2 and "--target does not apply to --format=onnx" in capsys.readouterr().err


def test_the_analyzer_is_captured_and_its_gpu_verdict_kept():
    """The analyzer's text (printed by its Python half in TF 2.21) is captured whole. Its GPU
    check no longer looks at ops: a 3-input ADD_N, which the delegate refuses, "looks
    compatible" to it; the delegate's rules catch it. Should a later TensorFlow check ops
    again, its per-op warnings are attributed to their ops (the older format, parsed below)."""
    model = flatbuffer(lambda x: tf_add_n(x))
    text = analyzer_text(model)
    assert "Op#0 MUL" in text and "ADD_N(" in text
    verdict, warnings = analyzer_findings(text)
    assert verdict.startswith("Your model looks compatible with GPU delegate") and not warnings
    entry = gpu_delegate(model)
    assert entry["analyzer"] == verdict and not entry["runs_wholly_on_gpu"]
    assert entry["fallback_ops"] == [{"index": 2, "op": "ADD_N", "why": "ADD_N only supports 2 "
                                      "inputs.", "source": "delegate rules"}]
    older = ("Subgraph#0 main(T#0) -> [T#2]\n  Op#0 RESHAPE(T#0, T#1) -> [T#3]\n"
             "  Op#1 ARG_MAX(T#3, T#2) -> [T#4]\nGPU COMPATIBILITY WARNING: Not supported op "
             "ARG_MAX\n\nGPU COMPATIBILITY WARNING: Subgraph#0 has GPU delegate compatibility "
             "issues at nodes 1 with TFLite runtime version 2.11.0\n")
    assert analyzer_findings(older) == ("GPU COMPATIBILITY WARNING: Subgraph#0 has GPU delegate "
                                        "compatibility issues at nodes 1 with TFLite runtime "
                                        "version 2.11.0", {1: "Not supported op ARG_MAX"})


def tf_add_n(x):
    import tensorflow as tf

    return tf.math.add_n([x, x * 2, x * 3])


def test_the_delegate_rules_on_converted_ops():
    import tensorflow as tf

    symmetric = flatbuffer(lambda x: tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]],
                                            mode="SYMMETRIC"))
    reflect = flatbuffer(lambda x: tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT"))
    assert [op["problem"] for op in rule_findings(symmetric)] == [
        "Only Reflective padding is supported for Mirror Pad operation. But node has 1"]
    assert [op["problem"] for op in rule_findings(reflect)] == [None]
    argmax = rule_findings(flatbuffer(lambda x: tf.argmax(tf.reshape(x, (1, -1)), -1)))
    assert [(op["op"], op["problem"]) for op in argmax] == [
        ("RESHAPE", None), ("ARG_MAX", "Not supported op ARG_MAX")]
    tensor = {"type": "FLOAT32", "shape": [1, 8, 8, 3], "const": False}
    axes = {"type": "INT32", "shape": [2], "const": False}
    assert op_problem("MEAN", None, [tensor, axes], [tensor]) == (
        "Expected 1 runtime input tensor(s), but node has 2 runtime input(s).")
    assert op_problem("MEAN", None, [tensor, {**axes, "const": True}], [tensor]) is None
    assert op_problem("CUSTOM", "MyOp", [tensor], [tensor]) == "Not supported custom op MyOp"
    cast = {"type": "INT8", "shape": [1], "const": False}
    assert op_problem("CAST", None, [cast], [tensor]).startswith("Not supported Cast case")
    assert np.all([op["problem"] is None for op in rule_findings(
        flatbuffer(lambda x: tf.nn.relu6(x * 2.0 + 1.0)))])
