"""Smoke test of benchmarks/train_throughput.py on a tiny configuration (32 px, batch 4)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "train_throughput.py")


def bench(*args, timeout=300):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, check=False)


@pytest.mark.large
def test_train_throughput_tiny_run(tmp_path):
    result = bench("--resolution=32", "--batch_size=4", "--steps=2", "--warmup=1",
                   "--repeats=1", "--num_classes=10", f"--results={tmp_path}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads((tmp_path / "train_throughput.json").read_text())
    (row,) = data["rows"]
    assert row["variant"] == "b0" and row["resolution"] == 32 and row["batch_size"] == 4
    assert row["ours_images_per_s"] > 0 and row["keras_applications_images_per_s"] > 0
    # the ratio of the unrounded speeds; the row shows them rounded to 0.01 image/s
    assert row["ratio"] == pytest.approx(
        row["ours_images_per_s"] / row["keras_applications_images_per_s"], abs=0.005)
    # the same architecture (keras.applications' total adds its Normalization's 7 statistics)
    assert row["ours_trainable_params"] == row["keras_applications_trainable_params"]
    assert "ratio" in (tmp_path / "train_throughput.md").read_text()


def test_train_throughput_help_and_bad_variant():
    result = bench("--help", timeout=120)
    assert result.returncode == 0 and "--variants" in result.stdout + result.stderr
    result = bench("--variants=b9", "--resolution=32", timeout=120)
    assert result.returncode != 0 and "b9" in result.stderr
