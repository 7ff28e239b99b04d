"""`effnet quickstart`, the main job, run as a user runs it (the command line, in the test
process; a real subprocess where its start is the point), with its own defaults: the ImageNet Lite0 fine-tuned at 64 px for 4 epochs on the embedded set (1 600
images, 400 held out). The same run trains the lite0 that the quantization, app and training
tests use (conftest's `trained`)."""

import json
import os

import pytest

from conftest import effnet

ARTIFACTS = ("model_float32.tflite", "model_int8.tflite", "model.onnx")


@pytest.mark.xdist_group("trained-lite0")
def test_quickstart_trains_exports_and_reports(quickstart_run):
    result, out = quickstart_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    accuracy = summary["validation"]["accuracy"]
    assert accuracy >= 0.90, f"validation top-1 {accuracy}: the main job's bar is 0.90"
    assert summary["data"]["train_size"] == 1600 and summary["epochs"] == 4
    assert summary["config"]["resolution"] == 64 and summary["initial_weights"] == "imagenet"

    reports = {}
    for name in ARTIFACTS:
        assert (out / name).is_file(), name
        reports[name] = json.loads((out / f"{name}.json").read_text())
        assert reports[name]["passed"] is True, (name, reports[name])
    assert (os.path.getsize(out / "model_int8.tflite")
            < os.path.getsize(out / "model_float32.tflite") / 2)
    assert (out / "model.keras").is_file()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no staged leftovers

    # The printed report: the Keras accuracy and one table row per artifact, each passed.
    assert f"{accuracy:.4f}" in result.stdout
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()
            if line.split() and line.split()[0] in ARTIFACTS}
    assert set(rows) == set(ARTIFACTS), result.stdout[-3000:]
    for name, cols in rows.items():
        assert cols[-1] == "yes", cols
        assert abs(float(cols[1]) - reports[name]["size_bytes"] / 1e6) < 0.01
    assert "[quickstart] 5/5 report" in result.stdout
    # int8 within one point of the Keras model on the verification images
    int8 = reports["model_int8.tflite"]
    assert int8["accuracy_drop"] <= 0.01, int8
    # the TFLite files carry the run's labels; the int8 file was checked in MediaPipe Tasks
    for name in ("model_float32.tflite", "model_int8.tflite"):
        assert reports[name]["tflite_metadata"]["labels"] == 10
        assert f"{name}: metadata: image classifier" in result.stdout
    client = next(line for line in result.stdout.splitlines()
                  if line.startswith("MediaPipe Tasks ImageClassifier"))
    assert "loads as is" in client and "agrees with the LiteRT interpreter on 100%" in client
    assert "labels as in the run" in client
    # it ends with an `effnet predict` line on a validation image, labelled by name
    command = next(line for line in result.stdout.splitlines()
                   if line.startswith("$ effnet predict"))
    answer = result.stdout.splitlines()[result.stdout.splitlines().index(command) + 1]
    assert answer.startswith(str(out / "example.png") + ": ")
    assert answer.split(": ")[1].split()[0] in summary["data"]["class_names"]


def test_quickstart_bad_data_fails_clearly_and_writes_nothing(tmp_path):
    out = tmp_path / "qs"
    result = effnet("quickstart", "--data=folder:/nonexistent/images", f"--out={out}",
                    timeout=120)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "effnet quickstart: error:" in result.stderr
    assert "/nonexistent/images" in result.stderr and "not found" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_quickstart_is_a_function_with_its_own_defaults(tmp_path):
    """The main job as a function (what `effnet quickstart` calls): its own defaults, no flag
    value overwritten; a bad data spec fails before anything is written."""
    import inspect

    from keras_effnet.cli.quickstart import QUICKSTART_DEFAULTS, quickstart
    from keras_effnet.errors import MissingFile

    parameters = inspect.signature(quickstart).parameters
    assert {name: parameters[name].default for name in QUICKSTART_DEFAULTS} == QUICKSTART_DEFAULTS
    with pytest.raises(MissingFile, match="--data=folder:/nonexistent/images: .*not found"):
        quickstart(data="folder:/nonexistent/images", out=str(tmp_path / "qs"))
    assert list(tmp_path.iterdir()) == []
