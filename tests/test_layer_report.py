"""Per-layer int8 error and float layers (export/layer_report.py): the CSV's rows are the
int8 file's quantized layers, worst first; keeping the worst layer in float raises the SQNR of
a model built to be hard to quantize; a failed int8 verification names its worst layers and
the next step. A tiny model at 32 px: each int8 export takes a few seconds."""

import csv
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_effnet.export import VerificationError, to_tflite
from keras_effnet.export.layer_report import CSV_FIELDS

# random weights: the outputs are near-ties, so only the SQNR says anything (not gated here)
JUDGE_NOTHING = {"min_decisive_images": 0, "min_sqnr_db": None}


@pytest.fixture(scope="module")
def outlier_model():
    """Conv, a linear conv ("outlier") and a 1×1 conv ("reader"), then pooling and a softmax
    head (10 classes, 32 px), with one channel's scale moved across the boundary: the
    outlier's channel 0 ×300, the reader's weights on it ÷300. The float model computes the
    same function as without the move; in int8 that channel sets the tensor's one step and
    crushes the other 15 channels to a level or two."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="first")(x)
    x = keras.layers.Conv2D(16, 3, name="outlier")(x)
    x = keras.layers.Conv2D(16, 1, activation="relu", name="reader")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="head")(x))
    kernel, bias = model.get_layer("outlier").get_weights()
    kernel[..., 0] *= 300
    bias[0] *= 300
    model.get_layer("outlier").set_weights([kernel, bias])
    kernel, bias = model.get_layer("reader").get_weights()
    kernel[:, :, 0, :] /= 300
    model.get_layer("reader").set_weights([kernel, bias])
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (48, 32, 32, 3)).astype("float32")


def quantized_ops(path):
    """The op names of a TFLite file's ops with an int8 output, but (de)quantization."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = flatbuffer_utils.read_model(str(path))
    graph = model.subgraphs[0]
    ops = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        name = names[max(code.builtinCode, code.deprecatedBuiltinCode)]
        if (name not in ("QUANTIZE", "DEQUANTIZE")
                and graph.tensors[op.outputs[0]].type == schema.TensorType.INT8):
            ops.append(name)
    return ops


def test_the_layer_report_lists_the_quantized_layers_worst_first(outlier_model, images,
                                                                 tmp_path):
    path = tmp_path / "m.tflite"
    report = to_tflite(outlier_model, path, "int8", representative_data=images,
                       layer_report=True, thresholds=JUDGE_NOTHING)
    assert report["layer_report"] == "m.tflite.layers.csv"
    with open(tmp_path / "m.tflite.layers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_FIELDS
    assert sorted(row["op"] for row in rows) == sorted(quantized_ops(path))
    assert [int(row["rank"]) for row in rows] == list(range(1, len(rows) + 1))
    keys = [(float(row["channel_sqnr_db"]), float(row["sqnr_db"])) for row in rows]
    assert keys == sorted(keys)  # worst first
    worst = rows[0]
    assert "outlier" in worst["layer"] and worst["op"] == "CONV_2D"
    assert float(worst["channel_sqnr_db"]) < 5 < 20 < float(worst["sqnr_db"])  # crushed channels
    assert float(worst["scale"]) > 100 * float(rows[-1]["scale"])
    assert report["worst_layers"][0]["layer"] == worst["layer"]
    assert len(report["worst_layers"]) == 5
    plain = to_tflite(outlier_model, tmp_path / "plain.tflite", "int8",
                      representative_data=images, thresholds=JUDGE_NOTHING)
    assert "worst_layers" not in plain and "layer_report" not in plain
    assert plain["sqnr_db"] == pytest.approx(report["sqnr_db"], abs=1e-6)  # the same file


def test_float_layers_raise_the_sqnr_of_a_hard_model(outlier_model, images, tmp_path):
    report = to_tflite(outlier_model, tmp_path / "m.tflite", "int8", representative_data=images,
                       float_layers=1, thresholds=JUDGE_NOTHING)
    entry = report["float_layers"]
    assert entry["count"] == 1 and "outlier" in entry["layers"][0]
    assert len(entry["kept_in_float"]) == 2 and "reader" in entry["kept_in_float"][1]
    plain = entry["plain_int8"]
    assert report["sqnr_db"] > plain["sqnr_db"] + 10, (report["sqnr_db"], plain["sqnr_db"])
    assert entry["sqnr_db_gained"] == pytest.approx(report["sqnr_db"] - plain["sqnr_db"],
                                                    abs=0.01)
    assert entry["size_bytes_added"] == report["size_bytes"] - plain["size_bytes"] > 0
    assert plain["median_latency_ms"] > 0 and "latency_ms_added" in entry
    saved = json.loads((tmp_path / "m.tflite.json").read_text())
    assert saved["float_layers"] == entry
    int8_ops = quantized_ops(tmp_path / "m.tflite")
    assert int8_ops.count("CONV_2D") == 1  # the first conv stays int8; the two others float


def test_a_failed_int8_verification_names_its_worst_layers(outlier_model, images, tmp_path,
                                                           capsys):
    path = tmp_path / "m.tflite"
    with pytest.raises(VerificationError) as caught:
        to_tflite(outlier_model, path, "int8", representative_data=images,
                  thresholds={"min_decisive_images": 0, "min_agreement": 0.9})
    message = str(caught.value)
    assert "< min_agreement 0.9" in message
    assert "the worst int8 layers: " in message and "outlier" in message
    assert "float_layers=N" in message
    kept = json.loads((tmp_path / "m.tflite.failed.json").read_text())
    assert "outlier" in kept["worst_layers"][0]["layer"] and len(kept["worst_layers"]) == 5
    # the CLI prints the worst layers and names the flag
    from keras_effnet.cli.main import main

    model = tmp_path / "m.keras"
    outlier_model.save(model)
    capsys.readouterr()
    code = main(["effnet", "export", f"--model={model}", "--quantize=int8",
                 "--calibration=synthetic?train=48&validation=48", "--min_decisive_images=0",
                 "--min_agreement=0.9", "--verify_count=16"])
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert "[effnet export] worst int8 layers (channel SQNR, SQNR;" in out
    assert "  1. " in out and "--float_layers=N" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("kwargs,match", [
    ({"layer_report": True}, r"layer_report applies to quantize='int8' \(got 'none'\)"),
    ({"float_layers": 2, "quantize": "float16"}, r"float_layers applies to quantize='int8'"),
    ({"float_layers": -1, "quantize": "int8"}, r"float_layers=-1; accepted: a whole number"),
    ({"float_layers": 99, "quantize": "int8"}, r"float_layers=99; accepted: 0\.\.5 \(this model "
                                               r"has 6 quantized layers"),
])
def test_bad_layer_options(kwargs, match, outlier_model, images, tmp_path):
    with pytest.raises(ValueError, match=match):
        to_tflite(outlier_model, tmp_path / "m.tflite", representative_data=images, **kwargs)
    assert not list(tmp_path.iterdir())


BENCHMARK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "benchmarks", "float_layers.py")


def test_float_layers_benchmark_help():
    done = subprocess.run([sys.executable, BENCHMARK, "--help"], capture_output=True, text=True,
                          check=False, cwd=os.path.dirname(os.path.dirname(BENCHMARK)))
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(flag in done.stdout for flag in ("--counts", "--scale", "--results"))


@pytest.mark.large
def test_float_layers_benchmark_writes_its_table(tmp_path):
    """A short run (2 epochs, N = 0 and 2): one row per N, the command and CPU flags kept."""
    done = subprocess.run([sys.executable, BENCHMARK, "--counts=0,2", "--epochs=2",
                           f"--results={tmp_path}"], capture_output=True, text=True,
                          check=False, cwd=os.path.dirname(os.path.dirname(BENCHMARK)),
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = json.loads((tmp_path / "float_layers.json").read_text())
    assert [row["float_layers"] for row in saved["rows"]] == [0, 2]
    assert saved["command"].startswith("python benchmarks/float_layers.py --counts=0,2")
    assert saved["float_accuracy_before_move"] == saved["float_accuracy_after_move"]
    assert "Command: `python benchmarks/float_layers.py" in (tmp_path / "float_layers.md"
                                                            ).read_text()
