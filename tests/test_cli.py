"""The `effnet` console script, run as a user runs it (a real subprocess)."""

import json

import pytest

import keras_effnet
from conftest import effnet


def _table(*args):
    """{model name: columns} of an `effnet profile` table."""
    result = effnet("profile", *args)
    assert result.returncode == 0, result.stderr
    return {line.split()[0]: line.split() for line in result.stdout.splitlines()
            if line.startswith("efficientnet-")}


def test_profile_reproduces_table_2():
    rows = _table("--variants=b0,b1,b2,b3,b4,b5,b6,b7,lite0,lite4")
    assert len(rows) == 10 and rows["efficientnet-b7"][4] == "66,347,960"
    for name, cols in rows.items():
        assert cols[4] == cols[5]  # params == published
        # MACs / paper FLOPs; the Lite README's MACs count more ops (0.95-0.97, BUILD_NOTES.md)
        assert abs(float(cols[8]) - 1) <= (0.05 if "-b" in name else 0.06)


def test_profile_phi_series():
    rows = _table("--phi=0,1,2,3,4")
    assert list(rows) == [f"efficientnet-phi{k}" for k in range(5)]
    # φ = 0 is B0: its published figures sit beside it; other φ have none
    assert rows["efficientnet-phi0"][4:6] == ["5,288,548"] * 2
    assert float(rows["efficientnet-phi0"][8]) == pytest.approx(0.989, abs=0.002)
    assert rows["efficientnet-phi3"][5] == "—"
    assert [int(rows[f"efficientnet-phi{k}"][3]) for k in range(5)] == [224, 256, 296, 344, 392]
    for k in range(1, 5):  # width β^φ, depth α^φ
        assert float(rows[f"efficientnet-phi{k}"][1]) == pytest.approx(1.1 ** k, abs=1e-3)
        assert float(rows[f"efficientnet-phi{k}"][2]) == pytest.approx(1.2 ** k, abs=1e-3)
    # a released variant at another resolution: same parameters, no published MACs to compare
    assert _table("--variants=b3", "--base_resolution=112")["efficientnet-b3"][5:9] == [
        "12,233,232", "0.478", "—", "—"]


def test_profile_lite_phi_per_layer():
    result = effnet("profile", "--phi=0,1,2", "--base=lite", "--per_layer")
    assert result.returncode == 0, result.stderr
    assert "efficientnet-lite-phi2" in result.stdout and "block1a_dwconv" in result.stdout
    assert "4,652,008    4,652,008" in result.stdout  # φ = 0 of the Lite base is Lite0


def test_build_saves_a_loadable_model(tmp_path):
    out = tmp_path / "lite0.keras"
    result = effnet("build", "--variant=lite0", "--num_classes=10", "--resolution=64",
                    f"--out={out}")
    assert result.returncode == 0, result.stderr
    model = keras_effnet.load_model(out)
    assert model.output_shape == (None, 10) and model.input_shape == (None, 64, 64, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["lite0.keras"]  # no temporary leftovers


@pytest.mark.parametrize("args,message", [
    (["profile", "--phi=x"], "--phi: 'x' is not a number"),
    (["profile"], "exactly one of --variant/--variants and --phi"),
    (["build", "--variant=b9"], "unknown variant 'b9'; did you mean 'b7'"),
    (["frobnicate"], "usage: effnet {build|profile"),
    (["build", "--variant=b0", "--out=/nonexistent/dir/m.keras"], "output folder does not exist"),
    (["train", "--variant=lite0", "--resolution=32", "--num_classes=3", "--batch_size=8",
      "--data=synthetic?train=16&validation=8", "--out=/nonexistent/never/written"],
     "has 10 classes but num_classes=3; they must agree"),
])
def test_cli_errors_are_clear(args, message):
    result = effnet(*args)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout


def test_profile_prints_table_3_beside_the_paper():
    result = effnet("profile", "--base=resnet50", "--phi=0,1,2")
    assert result.returncode == 0, result.stderr
    rows = {" ".join(line.split()[:2]): line.split() for line in result.stdout.splitlines()
            if line.startswith("resnet50")}
    assert rows["resnet50-phi0 1.000"][4] == "25,583,592"  # the φ table
    assert rows["resnet50 baseline"][2:7] == ["resnet50-phi0", "224", "25,583,592", "3.858",
                                               "4.1"]
    assert rows["resnet50 compound"][5:7] == ["16.777", "16.7"]
    assert "resnet50 d=4: missed (-11.5 %)" in result.stdout
    alone = effnet("profile", "--base=mobilenet_v2")
    assert alone.returncode == 0, alone.stderr
    lines = [line.split() for line in alone.stdout.splitlines()
             if line.startswith("mobilenet_v2 ") and ":" not in line]  # rows, not notes
    assert [line[1] for line in lines] == ["baseline", "d=4", "w=2", "r=2", "compound"]
    assert all(0.9 <= float(line[7]) <= 1.1 for line in lines)


def test_budget_prints_phi_margin_and_config():
    result = effnet("budget", "--base=lite", "--macs=6e8")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("phi = 0.8") and "macs" in first and "margin" in first
    assert "efficientnet-lite-phi0.8" in result.stdout and "stage kind" in result.stdout
    bad = effnet("budget", "--base=lite", "--macs=1e3")
    assert bad.returncode == 2 and "below the smallest valid model" in bad.stderr
    both = effnet("budget", "--base=lite", "--macs=1e9", "--params=1e7")
    assert both.returncode == 2 and "exactly one budget" in both.stderr


def test_search_rejects_bad_points_before_training(tmp_path):
    result = effnet("search", "--base=lite", "--points=1.2,1.1", "--data=synthetic",
                    f"--out={tmp_path / 's'}")
    assert result.returncode == 2 and "point '1.2,1.1'" in result.stderr
    assert not (tmp_path / "s").exists()
    no_data = effnet("search", "--base=lite", f"--out={tmp_path / 's'}")
    assert no_data.returncode != 0 and "needs --data=SPEC" in no_data.stderr


# ------------------------------------------------------------------ per-command flags and help

def _listed_flags(text):
    """The flag names a `--help` text lists (lines `  --name: ...`)."""
    return {line.split(":")[0].strip()[2:] for line in text.splitlines()
            if line.startswith("  --")}


def test_each_command_help_lists_only_its_own_flags():
    from keras_effnet.cli import COMMAND_FLAGS

    for command, taken in COMMAND_FLAGS.items():
        result = effnet(command, "--help")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: effnet {command} [--flags]")
        assert _listed_flags(result.stdout) == set(taken), command
    export = effnet("export", "--help").stdout
    out = next(line for line in export.splitlines() if line.startswith("  --out:"))
    assert "folder" in out and "build" not in out
    assert "--min_sqnr_db:" in export and "--epochs" not in export
    train = " ".join(effnet("train", "--help").stdout.split())  # unwrapped
    assert ".safetensors" in train and "timm" in train and "(default runs/train)" in train
    quickstart = " ".join(effnet("quickstart", "--help").stdout.split())
    assert "--epochs: training epochs (default 4)" in quickstart  # its own default
    general = effnet("--help")
    assert general.returncode == 0 and "export " in general.stdout
    assert not _listed_flags(general.stdout)  # commands only: no wall of every flag


def test_every_flag_belongs_to_a_command():
    import keras_effnet.cli as cli

    own = {flag.name for flag in cli.FLAGS.get_flags_for_module(cli)}
    taken = set().union(*cli.COMMAND_FLAGS.values())
    assert taken == own, (own - taken, taken - own)


@pytest.mark.parametrize("args,message", [
    (["export", "--model=m.keras", "--epochs=3"], "not `effnet export` flag(s): --epochs"),
    (["profile", "--variants=b0", "--out=p.txt"], "not `effnet profile` flag(s): --out"),
    (["build", "--variant=b0", "--quantize=int8", "--data=synthetic"],
     "not `effnet build` flag(s): --data, --quantize"),
    (["eval", "--model=m.keras", "--noskip_head"], "not `effnet eval` flag(s): --skip_head"),
])
def test_a_flag_of_another_command_is_refused(args, message, tmp_path):
    result = effnet(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "--help` lists its flags" in result.stderr
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ effnet export

def test_export_path_takes_a_file_or_a_folder(tmp_path):
    from keras_effnet.cli import export_path

    model = str(tmp_path / "run" / "model.keras")
    assert export_path(model, None, "tflite", "int8") == str(tmp_path / "run" / "model_int8.tflite")
    assert export_path(model, str(tmp_path), "onnx", "none") == str(tmp_path / "model.onnx")
    assert export_path(model, "deploy/", "tflite", "none") == "deploy/model_none.tflite"
    assert export_path(model, "x/m.tflite", "tflite", "int8") == "x/m.tflite"
    assert (export_path(model, str(tmp_path), "saved_model", "none")
            == str(tmp_path / "model_saved_model"))
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")  # an existing SavedModel: replaced
    assert export_path(model, str(tmp_path / "sm"), "saved_model", "none") == str(tmp_path / "sm")


@pytest.fixture(scope="module")
def bare_model(tmp_path_factory):
    """A model that no `effnet train` run wrote: random weights, a small MobileNetV1 at 32 px
    (converts in a few seconds), 10 classes."""
    path = tmp_path_factory.mktemp("bare") / "m.keras"
    config = keras_effnet.scale(base="mobilenet_v1", depth=0.5, width=0.25)
    keras_effnet.save_model(keras_effnet.build(config, num_classes=10, input_shape=(32, 32, 3)),
                            path)
    return path


@pytest.mark.parametrize("args,flag", [
    (["--quantize=int8"], "--calibration"),
    (["--format=onnx"], "--verify_data"),
    (["--quantize=int8", "--qat_epochs=1"], "--calibration"),
])
def test_export_of_a_bare_model_names_the_data_flag(args, flag, bare_model):
    result = effnet("export", f"--model={bare_model}", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"effnet export: error: pass {flag}=SPEC (folder:PATH, "
                                    "tfrecord:GLOB, or synthetic for a demo)")
    assert "no summary.json" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in bare_model.parent.iterdir()) == ["m.keras"]


@pytest.mark.parametrize("args,message", [
    (["--format=onnx", "--quantize=int8"], "--quantize does not apply to --format=onnx"),
    (["--io_dtype=uint8"], "--io_dtype does not apply to --format=tflite --quantize=none"),
    (["--quantize=dynamic", "--nobias_correction"],
     "--bias_correction does not apply to --format=tflite --quantize=dynamic"),
    (["--opset=13"], "--opset does not apply to --format=tflite --quantize=none"),
])
def test_export_refuses_a_flag_its_format_would_ignore(args, message, bare_model):
    result = effnet("export", f"--model={bare_model}", "--verify_data=synthetic", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == f"effnet export: error: {message}"


@pytest.mark.parametrize("flag,message", [
    ("--min_agreement=1.5", "--min_agreement=1.5; accepted: a number in [0, 1], or None"),
    ("--min_sqnr_db=-3", "--min_sqnr_db=-3.0; accepted: a number >= 0, or None"),
    ("--near_tie_margin=nan", "--near_tie_margin=nan; accepted"),
])
def test_export_threshold_flags_are_checked(flag, message, bare_model):
    result = effnet("export", f"--model={bare_model}", "--verify_data=synthetic", flag)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"effnet export: error: {message}" in result.stderr
    assert "[effnet export] loading" not in result.stdout  # checked before any slow work


def test_failed_export_keeps_only_its_report_under_the_umask(bare_model, tmp_path):
    out = tmp_path / "m_none.tflite"
    result = effnet("export", f"--model={bare_model}", f"--out={tmp_path}",
                    "--verify_data=synthetic?train=8&validation=8", "--max_abs_diff=1e-12",
                    "--min_sqnr_db=0", umask=0o027, timeout=600)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"effnet export: error: {out}: verification failed: max |Δ|")
    assert "max_abs_diff 1e-12" in error and f"report in {out}.failed.json" in error
    assert ".staged" not in error and ".tmp" not in error
    assert [p.name for p in tmp_path.iterdir()] == ["m_none.tflite.failed.json"]
    kept = json.loads((tmp_path / "m_none.tflite.failed.json").read_text())
    assert kept["passed"] is False and kept["thresholds"]["max_abs_diff"] == 1e-12
    assert kept["thresholds"]["min_sqnr_db"] == 0 and kept["images"] == 8
    assert isinstance(kept["disagreeing_images"], list) and len(kept["margins"]) == 8
    assert (tmp_path / "m_none.tflite.failed.json").stat().st_mode & 0o777 == 0o640
    assert " NO" in result.stdout  # the table was printed


@pytest.mark.xdist_group("trained-lite0")
def test_export_of_a_trained_run_uses_its_own_data(quickstart_run, tmp_path):
    """int8 from a run folder with no data flag: calibrated on the train split and verified
    on the validation split of the data the run trained on (its summary.json), written into a
    new folder (`--out=…/`) with the umask's permissions; the labels are the model's own."""
    from keras_effnet.cli import QUICKSTART_DEFAULTS

    data = QUICKSTART_DEFAULTS["data"]
    _, run = quickstart_run
    deploy = tmp_path / "deploy"
    result = effnet("export", f"--model={run / 'model.keras'}", "--quantize=int8",
                    f"--out={deploy}/", umask=0o027, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    source = f"the run's data, recorded in {run / 'summary.json'}"
    assert f"calibration data: {data}, train split ({source})" in result.stdout
    assert f"verification data: {data}, validation split ({source})" in result.stdout
    assert "labels: the model's 10 class names" in result.stdout
    assert "metadata: image classifier 'efficientnet-lite0', input float32" in result.stdout
    assert sorted(p.name for p in deploy.iterdir()) == ["model_int8.tflite",
                                                         "model_int8.tflite.json"]
    report = json.loads((deploy / "model_int8.tflite.json").read_text())
    assert report["passed"] and report["quantize"] == "int8"
    assert report["calibration_data"] == f"{data} (train split)"
    assert report["verify_data"] == f"{data} (validation split)"
    assert report["labels"] == json.loads((run / "summary.json").read_text())["data"][
        "class_names"]
    for name in ("model_int8.tflite", "model_int8.tflite.json"):
        assert (deploy / name).stat().st_mode & 0o777 == 0o640, name  # umask 027, not 0600
