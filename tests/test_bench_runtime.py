"""Smoke tests of benchmarks/latency.py and benchmarks/memory.py on a tiny configuration.

Each script runs as a subprocess, as a user runs it; the runs are in the `large` tier
(`make test-large`), `--help` in the default one. To stay inside the suite's time budget the
latency run and the Keras half of the memory run go side by side (the latency run exports the
.tflite files), then the TFLite half of the memory run reuses those files. Assertions are
about content, never about wall-clock time.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATENCY = os.path.join(ROOT, "benchmarks", "latency.py")
MEMORY = os.path.join(ROOT, "benchmarks", "memory.py")
BIAS = os.path.join(ROOT, "benchmarks", "int8_bias_correction.py")
CALIBRATION = os.path.join(ROOT, "benchmarks", "int8_calibration.py")
PROGRESSIVE = os.path.join(ROOT, "benchmarks", "progressive.py")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
MODES = ["keras_b1", "tflite_fp32", "tflite_int8"]


def _start(script, *args):
    return subprocess.Popen([sys.executable, script, *args], cwd=ROOT, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(process, timeout=600):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-4000:]
    return output


def _load(folder, name):
    for suffix in (".md", ".json"):
        assert os.path.isfile(os.path.join(folder, name + suffix)), os.listdir(folder)
    with open(os.path.join(folder, name + ".json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    artifacts, lat, mem_keras, mem_tflite = (str(root / n) for n in
                                             ("artifacts", "latency", "mem_keras", "mem_tflite"))
    common = ["--variants=lite0", "--resolution=32", "--runs=2"]
    latency = _start(LATENCY, *common, f"--modes={','.join(MODES)}", "--threads=1",
                     "--keras_applications=", "--warmup=1",
                     "--calibration_images=4", "--verify_images=4", f"--artifacts={artifacts}",
                     f"--results={lat}")
    memory = _start(MEMORY, *common, "--kinds=keras_infer,keras_train,onnx_export,"
                    "onnx_export_tf2onnx", "--batch_size=2", "--jobs=2", f"--results={mem_keras}")
    outputs = {"latency": _finish(latency), "mem_keras": _finish(memory)}
    memory = _start(MEMORY, *common, "--kinds=tflite_fp32,tflite_int8", f"--artifacts={artifacts}",
                    f"--results={mem_tflite}")
    outputs["mem_tflite"] = _finish(memory)
    return {"latency": lat, "mem_keras": mem_keras, "mem_tflite": mem_tflite,
            "artifacts": artifacts, "outputs": outputs}


@pytest.mark.large
def test_latency_writes_every_requested_mode(runs):
    result = _load(runs["latency"], "latency")
    assert os.path.getsize(os.path.join(runs["latency"], "latency.png")) > 1000
    rows = {row["mode"]: row for row in result["rows"]}
    assert sorted(rows) == sorted(MODES)
    for mode, row in rows.items():
        assert row["model"] == "lite0" and row["resolution"] == 32, row
        assert not row.get("error"), row
        assert row["latency_ms"] > 0 and row["images_per_s"] > 0, row
        assert row["size_bytes"] > 0 and row["macs"] > 0, row
        if mode.startswith("tflite"):
            assert row["threads"] == 1 and row["export_s"] > 0, row
    assert rows["tflite_int8"]["size_bytes"] <= 0.5 * rows["tflite_fp32"]["size_bytes"]
    with open(os.path.join(runs["latency"], "latency.md")) as f:
        markdown = f.read()
    assert "int8/fp32" in markdown and "tflite_int8" in markdown
    assert "[latency" in runs["outputs"]["latency"]  # a progress line per stage


@pytest.mark.large
def test_memory_rows_are_positive_and_int8_is_lighter(runs):
    keras_rows = _load(runs["mem_keras"], "memory")["rows"]
    tflite_rows = _load(runs["mem_tflite"], "memory")["rows"]
    by_kind = {row["measurement"]: row for row in keras_rows + tflite_rows}
    assert {"baseline_tf", "baseline_litert", "keras_infer", "keras_train", "tflite_fp32",
            "tflite_int8"} <= set(by_kind)
    for row in by_kind.values():
        assert row["peak_rss_mb"] > 0, row
    for kind in ("keras_infer", "keras_train", "tflite_fp32", "tflite_int8"):
        assert by_kind[kind]["increment_mb"] > 0, by_kind[kind]
    assert by_kind["keras_train"]["peak_rss_mb"] > by_kind["keras_infer"]["peak_rss_mb"]
    assert by_kind["tflite_int8"]["peak_rss_mb"] <= by_kind["tflite_fp32"]["peak_rss_mb"]
    assert by_kind["tflite_fp32"]["tensorflow_imported"] is False
    assert "reuse" in runs["outputs"]["mem_tflite"]  # the latency run's files, not new exports
    ours, theirs = by_kind["onnx_export"], by_kind["onnx_export_tf2onnx"]
    assert ours["size_mb"] == pytest.approx(theirs["size_mb"], rel=0.01)
    assert ours["size_mb"] == pytest.approx(ours["weights_mb"], rel=0.05)
    assert 0 < ours["increment_mb"] < theirs["increment_mb"]  # the optimizer passes' copies


@pytest.mark.parametrize("script", [LATENCY, MEMORY])
def test_help_exits_zero(script):
    done = subprocess.run([sys.executable, script, "--help"], check=False, cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--variants" in done.stdout + done.stderr


def test_bias_correction_benchmark_help():
    """--help lists its flags (bad flags: below; the measurement itself: large, below)."""
    done = subprocess.run([sys.executable, BIAS, "--help"], check=False, cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--trained" in done.stdout and "--verify_data" in done.stdout


@pytest.mark.large
def test_bias_correction_benchmark_reproduces_the_real_lite0_gain(tmp_path):
    """The committed command behind BUILD_NOTES' table: the correction raises the real Lite0's
    int8 SQNR on the centre crops and pooled over the unseen halves."""
    _finish(_start(BIAS, f"--results={tmp_path}"))
    rows = _load(str(tmp_path), "int8_bias_correction")["rows"]
    sqnr = {(r["measured on"], r["bias correction"]): r["sqnr_db"] for r in rows}
    for measured in ("8 centre crops", "pooled (8 unseen)"):
        assert sqnr[measured, "on"] >= sqnr[measured, "off"] + 2, sqnr


@pytest.mark.parametrize("script,args,message", [
    (BIAS, ["--trained=m.keras"], "--trained needs --calibration=SPEC"),
    (BIAS, ["--trained=nope.keras", "--calibration=synthetic", "--verify_data=synthetic"],
     "no such file(s): ['nope.keras']"),
    (CALIBRATION, ["--counts=ten"], "--counts=['ten']; accepted: integers >= 1"),
    (CALIBRATION, ["--trained=m.keras"], "--trained needs --calibration=SPEC"),
    (PROGRESSIVE, ["--data=mnist"], "--data: ['mnist']; accepted: digits, synthetic"),
    (MEMORY, ["--table=a/b"], "--table='a/b': a file name without folders"),
])
def test_benchmarks_refuse_bad_flags_before_any_work(script, args, message, tmp_path):
    """A usage error before any work, and nothing written."""
    done = subprocess.run([sys.executable, script, *args, f"--results={tmp_path}"],
                          check=False, cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and message in done.stderr, done.stderr[-2000:]
    assert not list(tmp_path.iterdir())


@pytest.mark.large
def test_calibration_count_benchmark_tiny_run(tmp_path):
    """The real Lite0 and a trained model, two counts, one draw each: one row per count and
    model, every figure a real measurement."""
    from keras_effnet.train import train

    train("lite0", data="synthetic?train=64&validation=16", epochs=1, batch_size=16,
          resolution=32, out=str(tmp_path / "run"), verbose=0)
    _finish(_start(CALIBRATION, "--counts=4,8", "--draws=1", f"--results={tmp_path}",
                   f"--trained={tmp_path / 'run' / 'model.keras'}",
                   "--calibration=synthetic?train=64&validation=16",
                   "--verify_data=synthetic?train=1&validation=32&seed=1", "--verify_count=32"))
    rows = _load(str(tmp_path), "int8_calibration")["rows"]
    assert sorted((r["model"][-11:], r["calibration images"]) for r in rows) == sorted(
        [("model.keras", 4), ("model.keras", 8), ("e0 (photos)", 4), ("e0 (photos)", 8)])
    assert all(r["sqnr_db"] > 5 and r["convert s"] > 0 for r in rows), rows


@pytest.mark.large
def test_progressive_benchmark_tiny_run(tmp_path):
    """Real digits, one seed, both methods from scratch and from ImageNet weights (staged):
    the progressive runs trained at growing sizes, the staged ones say so."""
    _finish(_start(PROGRESSIVE, "--models=lite0", "--data=digits", "--seeds=0", "--epochs=4",
                   "--resolution=56", "--batch_size=32", "--starts=scratch,default",
                   "--fine_tuning=staged", f"--workdir={tmp_path / 'work'}",
                   f"--results={tmp_path}"))
    rows = _load(str(tmp_path), "progressive")["rows"]
    assert [(r["method"], r["fine-tuning"], r["sizes"]) for r in rows] == [
        ("fixed", "-", "56"), ("progressive", "-", "48→51→53→56"),
        ("fixed", "staged", "56"), ("progressive", "staged", "48→51→53→56")]
    assert all(0 <= r["val_top1"] <= 1 and r["fit_s"] > 0 for r in rows)
    assert len(list((tmp_path / "work" / "digits").rglob("*.png"))) == 1797
