"""`effnet quickstart`, the main job, run as a user runs it (a real subprocess), reduced to
SHORT_DATA (960 training images) and 12 epochs at 48 px. The same run trains the lite0 that the
quantization and training tests use (conftest's `trained`). Most of its time is fixed cost
(tracing the training step, three conversions and their verification), not training."""

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
    assert accuracy >= 0.3, f"validation top-1 {accuracy}: not 3× chance (0.1)"
    assert summary["data"]["train_size"] == 960 and summary["epochs"] == 12
    assert summary["config"]["resolution"] == 48

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
    assert "[quickstart] 4/4 report" in result.stdout


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
