"""`effnet quickstart`, the main job, run as a user runs it (a real subprocess), reduced to a
small synthetic set and 10 short epochs. Most of its time is fixed cost (tracing the training
step, three conversions and their verification), not training."""

import json
import os
import shutil
import subprocess
import sys

ARTIFACTS = ("model_float32.tflite", "model_int8.tflite", "model.onnx")
# lite0 at 48 px, 640 training images, 10 epochs of batch 32 (200 steps), quickstart's learning
# rate: validation top-1 0.33–0.35 here, against 0.1 for chance. At 32 px a similar budget stayed
# near chance (0.18–0.19). 256 validation images (all of them verify the artifacts): int8 top-1
# agreement with Keras was 0.94–0.96 against the 0.90 threshold; with 160 images and 8 epochs
# (or 32 px) it was 0.92–0.94 in five runs and below 0.90 in a sixth (small output margins).
REDUCED = ["--base_resolution=48", "--epochs=10", "--batch_size=32",
           "--data=synthetic?train=640&validation=256"]


def effnet(*args, cwd=None, timeout=1200):
    exe = shutil.which("effnet") or os.path.join(os.path.dirname(sys.executable), "effnet")
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, check=False)


def test_quickstart_trains_exports_and_reports(tmp_path):
    out = tmp_path / "qs"
    result = effnet("quickstart", *REDUCED, f"--out={out}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    summary = json.loads((out / "summary.json").read_text())
    accuracy = summary["validation"]["accuracy"]
    assert accuracy >= 0.2, f"validation top-1 {accuracy} is near chance (0.1)"
    assert summary["data"]["train_size"] == 640 and summary["epochs"] == 10
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
