"""The `effnet` command line: the console script run as a user runs it (a real subprocess),
where start-up, help, exit codes or output files are what a test checks; the commands' logic
in this process (`keras_effnet.cli.main.main`, the command functions)."""

import functools
import json
import subprocess
import sys

import pytest

import keras_effnet
from conftest import effnet, effnet_in_process, user_environment


def cli(*args):
    """`effnet ARGS` in this process: (exit status, stdout, stderr)."""
    result = effnet_in_process(*args)
    return result.returncode, result.stdout, result.stderr


def _table(*args):
    """{model name: columns} of an `effnet profile` table."""
    code, out, err = cli("profile", *args)
    assert code == 0, err
    return {line.split()[0]: line.split() for line in out.splitlines()
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


def test_profile_lite_phi_per_layer(capsys):
    from keras_effnet.cli.models import profile

    profile(phi=[0, 1, 2], base="lite", per_layer=True)
    out = capsys.readouterr().out
    assert "efficientnet-lite-phi2" in out and "block1a_dwconv" in out
    assert "4,652,008    4,652,008" in out  # φ = 0 of the Lite base is Lite0


def test_build_saves_a_loadable_model(tmp_path):
    from keras_effnet.cli.models import build

    out = tmp_path / "lite0.keras"
    build(variant="lite0", num_classes=10, resolution=64, out=str(out))
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
     "has 10 classes but --num_classes=3; they must agree"),  # the library's error, as flags
    (["build", "--variant=lite0", "--weights=imagenet", "--num_classes=10", "--resolution=32"],
     "--weights=imagenet has a 1000-class classifier; --num_classes=10 needs --skip_head"),
])
def test_cli_errors_are_clear(args, message):
    code, _, err = cli(*args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_profile_prints_table_3_beside_the_paper():
    code, out, err = cli("profile", "--base=resnet50", "--phi=0,1,2")
    assert code == 0, err
    rows = {" ".join(line.split()[:2]): line.split() for line in out.splitlines()
            if line.startswith("resnet50")}
    assert rows["resnet50-phi0 1.000"][4] == "25,583,592"  # the φ table
    assert rows["resnet50 baseline"][2:7] == ["resnet50-phi0", "224", "25,583,592", "3.858",
                                               "4.1"]
    assert rows["resnet50 compound"][5:7] == ["16.777", "16.7"]
    assert "resnet50 d=4: missed (-11.5 %)" in out
    code, alone, err = cli("profile", "--base=mobilenet_v2")
    assert code == 0, err
    lines = [line.split() for line in alone.splitlines()
             if line.startswith("mobilenet_v2 ") and ":" not in line]  # rows, not notes
    assert [line[1] for line in lines] == ["baseline", "d=4", "w=2", "r=2", "compound"]
    assert all(0.9 <= float(line[7]) <= 1.1 for line in lines)


def test_budget_prints_phi_margin_and_config():
    code, out, err = cli("budget", "--base=lite", "--macs=6e8")
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith("phi = 0.8") and "macs" in first and "margin" in first
    assert "efficientnet-lite-phi0.8" in out and "stage kind" in out
    code, _, err = cli("budget", "--base=lite", "--macs=1e3")
    assert code == 2 and "below the smallest valid model" in err
    code, _, err = cli("budget", "--base=lite", "--macs=1e9", "--params=1e7")
    assert code == 2 and "exactly one budget" in err


def test_search_rejects_bad_points_before_training(tmp_path):
    code, _, err = cli("search", "--base=lite", "--points=1.2,1.1", "--data=synthetic",
                       f"--out={tmp_path / 's'}")
    assert code == 2 and "point '1.2,1.1'" in err
    assert not (tmp_path / "s").exists()
    code, _, err = cli("search", "--base=lite", f"--out={tmp_path / 's'}")
    assert code == 2 and "needs --data=SPEC" in err


# ------------------------------------------------------------------ per-command flags and help

def _listed_flags(text):
    """The flag names a `--help` text lists (lines `  --name: ...`)."""
    return {line.split(":")[0].strip()[2:] for line in text.splitlines()
            if line.startswith("  --")}


def test_each_command_help_lists_only_its_own_flags():
    from keras_effnet.cli import COMMAND_FLAGS, command_help

    for command, taken in COMMAND_FLAGS.items():
        text = command_help(command)
        assert text.startswith(f"usage: effnet {command} [--flags]")
        assert _listed_flags(text) == set(taken), command
    export = effnet("export", "--help")  # the console script's own --help
    assert export.returncode == 0 and export.stdout.strip() == command_help("export")
    out = next(line for line in export.stdout.splitlines() if line.startswith("  --out:"))
    assert "folder" in out and "build" not in out
    assert "--min_sqnr_db:" in export.stdout and "--epochs" not in export.stdout
    train = " ".join(command_help("train").split())  # unwrapped
    assert ".safetensors" in train and "timm" in train and "(default runs/train)" in train
    quickstart = " ".join(command_help("quickstart").split())
    assert "--epochs: training epochs (default 4)" in quickstart  # its own default
    general = effnet("--help")
    assert general.returncode == 0 and "export " in general.stdout
    assert not _listed_flags(general.stdout)  # commands only: no wall of every flag


def test_each_flag_is_a_keyword_of_its_command_function():
    """A command's flags are its function's keyword parameters (the verification thresholds:
    one dict parameter), each flag of the parameter's kind and default."""
    import inspect

    from keras_effnet.cli import COMMAND_FLAGS, COMMANDS, flag_values

    for command, function in COMMANDS.items():
        keywords = {name for name, p in inspect.signature(function).parameters.items()
                    if p.kind is p.KEYWORD_ONLY}
        table = COMMAND_FLAGS[command]
        groups = {flag.group for flag in table.values() if flag.group}
        assert {name for name in table if not table[name].group} | groups == keywords, command
        defined = flag_values(command)
        for name, p in inspect.signature(function).parameters.items():
            if name in table:
                assert defined[name].default == p.default, (command, name)
    assert flag_values("train")["recipe"].parser.enum_values == ["short", "paper"]
    assert flag_values("quickstart")["epochs"].default == 4


@pytest.mark.parametrize("args,message", [
    (["export", "--model=m.keras", "--epochs=3"], "not `effnet export` flag(s): --epochs"),
    (["profile", "--variants=b0", "--out=p.txt"], "not `effnet profile` flag(s): --out"),
    (["build", "--variant=b0", "--quantize=int8", "--data=synthetic"],
     "not `effnet build` flag(s): --data, --quantize"),
    (["eval", "--model=m.keras", "--noskip_head"], "not `effnet eval` flag(s): --skip_head"),
])
def test_a_flag_of_another_command_is_refused(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(*args)
    assert code == 2, out + err
    assert message in err and "--help` lists its flags" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error,one_line", [
    ("InvalidArgument('variant=b0 is not for this command')", True),
    ("TypeError('a bug: ' + repr(kwargs['variant']))", False)])
def test_only_a_user_error_is_one_line(error, one_line):
    """A UserError (and absl's UsageError) is one line in the command's flags, exit status 2;
    any other exception is a bug: the console script keeps its traceback."""
    code = ("import functools, sys\n"
            "from keras_effnet.cli import main\n"
            "from keras_effnet.errors import InvalidArgument\n"
            "@functools.wraps(main.COMMANDS['profile'])\n"
            "def command(**kwargs):\n"
            f"    raise {error}\n"
            "main.COMMANDS['profile'] = command\n"
            "sys.argv = ['effnet', 'profile', '--variant=b0']\n"
            "main.run()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    if one_line:
        assert done.returncode == 2 and done.stderr == (
            "effnet profile: error: --variant=b0 is not for this command\n"), done.stderr
    else:
        assert done.returncode == 1 and "Traceback (most recent call last)" in done.stderr
        assert "TypeError: a bug: 'b0'" in done.stderr and "error:" not in done.stderr


def test_a_bug_in_a_command_is_raised_in_process(monkeypatch):
    from keras_effnet.cli import COMMANDS
    from keras_effnet.cli.main import main

    @functools.wraps(COMMANDS["budget"])
    def command(**kwargs):
        raise ValueError("not a user error: a bug")

    monkeypatch.setitem(COMMANDS, "budget", command)
    with pytest.raises(ValueError, match="a bug"):
        main(["effnet", "budget", "--macs=1e9"])


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
    code, out, err = cli("export", f"--model={bare_model}", *args)
    assert code == 2, out + err
    assert err.startswith(f"effnet export: error: pass {flag}=SPEC (folder:PATH, "
                          "tfrecord:GLOB, or synthetic for a demo)")
    assert "no summary.json" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in bare_model.parent.iterdir()) == ["m.keras"]


@pytest.mark.parametrize("args,message", [
    (["--format=onnx", "--quantize=int8"], "--quantize does not apply to --format=onnx"),
    (["--io_dtype=uint8"], "--io_dtype does not apply to --format=tflite --quantize=none"),
    (["--quantize=dynamic", "--nobias_correction"],
     "--bias_correction does not apply to --format=tflite --quantize=dynamic"),
    (["--opset=13"], "--opset does not apply to --format=tflite --quantize=none"),
    (["--format=saved_model", "--verify_count=8"],
     "--verify_count does not apply to --format=saved_model"),
])
def test_export_refuses_a_flag_its_format_would_ignore(args, message, bare_model):
    code, out, err = cli("export", f"--model={bare_model}", "--verify_data=synthetic",
                         *args)
    assert code == 2, out + err
    assert err.strip() == f"effnet export: error: {message}"


@pytest.mark.parametrize("flag,message", [
    ("--min_agreement=1.5", "--min_agreement=1.5; accepted: a number in [0, 1], or None"),
    ("--min_sqnr_db=-3", "--min_sqnr_db=-3.0; accepted: a number >= 0, or None"),
    ("--near_tie_margin=nan", "--near_tie_margin=nan; accepted"),
    ("--min_decisive_images=2.5", "--min_decisive_images=2.5; accepted: a whole number >= 0"),
])
def test_export_threshold_flags_are_checked(flag, message, bare_model):
    code, out, err = cli("export", f"--model={bare_model}", "--verify_data=synthetic",
                         flag)
    assert code == 2, out + err
    assert f"effnet export: error: {message}" in err
    assert "[effnet export] loading" not in out  # checked before any slow work


def test_failed_export_keeps_only_its_report_under_the_umask(bare_model, tmp_path):
    out = tmp_path / "m_none.tflite"
    result = effnet("export", f"--model={bare_model}", f"--out={tmp_path}",
                    "--verify_data=synthetic?train=8&validation=8", "--max_abs_diff=1e-12",
                    "--min_sqnr_db=0", "--verify_count=6", umask=0o027, timeout=600)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"effnet export: error: {out}: verification failed: max |Δ|")
    assert "max_abs_diff 1e-12" in error and f"report in {out}.failed.json" in error
    assert ".staged" not in error and ".tmp" not in error
    assert [p.name for p in tmp_path.iterdir()] == ["m_none.tflite.failed.json"]
    kept = json.loads((tmp_path / "m_none.tflite.failed.json").read_text())
    assert kept["passed"] is False and kept["thresholds"]["max_abs_diff"] == 1e-12
    assert kept["thresholds"]["min_sqnr_db"] == 0 and kept["images"] == 6  # --verify_count
    assert isinstance(kept["disagreeing_images"], list) and len(kept["margins"]) == 6
    assert (tmp_path / "m_none.tflite.failed.json").stat().st_mode & 0o777 == 0o640
    assert " NO" in result.stdout  # the table was printed


@pytest.mark.xdist_group("trained-lite0")
def test_export_of_a_trained_run_uses_its_own_data(uint8_export):
    """int8 (uint8 input and output) from a run folder with no data flag (conftest's
    `uint8_export`): calibrated on the train split and verified on the validation split of the
    data the run trained on (its summary.json), written into a new folder (`--out=…/`) with the
    umask's permissions; the labels are the model's own; a uint8 input takes pixels as they
    are."""
    from keras_effnet.cli import QUICKSTART_DEFAULTS

    data = QUICKSTART_DEFAULTS["data"]
    result, run, deploy = uint8_export, uint8_export.run, uint8_export.folder
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    source = f"the run's data, recorded in {run / 'summary.json'}"
    assert f"calibration data: {data}, train split ({source})" in result.stdout
    assert f"verification data: {data}, validation split ({source})" in result.stdout
    assert "labels: the model's 10 class names" in result.stdout
    assert ("metadata: image classifier 'efficientnet-lite0', input uint8 as (pixels - 0) / 1, "
            "10 labels") in result.stdout
    assert sorted(p.name for p in deploy.iterdir()) == ["model_int8.tflite",
                                                         "model_int8.tflite.json"]
    report = json.loads((deploy / "model_int8.tflite.json").read_text())
    assert report["passed"] and report["quantize"] == "int8" and report["io_dtype"] == "uint8"
    assert report["decisive_images"] >= 30, report  # enough to judge (min_decisive_images)
    assert f"[effnet export] {report['checked']}" in result.stdout
    assert report["checked"].startswith(f"verified on 64 images ({report['decisive_images']} "
                                        "decisive")
    assert "; top-1 accuracy: Keras " in report["checked"]  # the run's classes match
    assert report["keras_accuracy"] >= 0.9 and report["artifact_accuracy"] >= 0.9, report
    assert report["calibration_data"] == f"{data} (train split)"
    assert report["verify_data"] == f"{data} (validation split)"
    assert report["labels"] == json.loads((run / "summary.json").read_text())["data"][
        "class_names"]
    for name in ("model_int8.tflite", "model_int8.tflite.json"):
        assert (deploy / name).stat().st_mode & 0o777 == 0o640, name  # umask 027, not 0600


# --------------------------------------------------------------------- quiet, plain output

# What TensorFlow writes on every start without `effnet`'s filter (keras_effnet/console.py).
STARTUP = ("absl::InitializeLog", "port.cc", "cudart_stub.cc", "cpu_feature_guard.cc",
           "cuda_platform.cc", "XNNPACK")


def test_train_output_off_a_terminal_is_one_plain_line_per_epoch(tmp_path):
    """`effnet train > log`: no progress bar (carriage returns, backspaces, escapes), one line
    per epoch, then the summary lines."""
    result = effnet("train", "--phi=-4", "--base=lite", "--resolution=32", "--epochs=1",
                    "--batch_size=8", "--data=synthetic?train=16&validation=8", "--weights=none",
                    f"--out={tmp_path / 'run'}", timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert not set("\r\x1b\x08") & set(result.stdout), repr(result.stdout[:300])
    lines = result.stdout.splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("starting weights: none"), lines  # before training
    assert lines[1].startswith("2/2 - ") and " - val_accuracy: " in lines[1], lines
    assert lines[2].startswith("validation: top-1 ") and lines[2].endswith(
        f" -> {tmp_path / 'run'}/model.keras")


def test_progress_bar_only_on_a_terminal(monkeypatch):
    import io

    from keras_effnet.console import fit_verbosity

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdout", Terminal())
    assert fit_verbosity("auto") == 1
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert fit_verbosity("auto") == 2 and fit_verbosity(0) == 0 and fit_verbosity(1) == 1


def test_predict_says_what_is_wrong_and_nothing_of_tensorflow_starting(bare_model, tmp_path):
    """In a user's environment (no TF_CPP_MIN_LOG_LEVEL, GPU not hidden), stderr holds the
    command's own lines only: a missing file is "no such file", a text file "not an image"."""
    from PIL import Image

    from keras_effnet.console import cpu_host

    Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "red.png")
    (tmp_path / "notes.png").write_text("not an image")
    result = effnet("predict", f"--model={bare_model}", str(tmp_path / "red.png"),
                    str(tmp_path / "gone.jpg"), str(tmp_path / "notes.png"), "--top_k=1",
                    env=user_environment())
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1].startswith(f"{tmp_path / 'red.png'}: ")
    errors = result.stderr.splitlines()
    assert not [line for line in errors if any(part in line for part in STARTUP)], errors
    assert f"effnet predict: skipped {tmp_path / 'gone.jpg'}: no such file" in errors
    assert (f"effnet predict: skipped {tmp_path / 'notes.png'}: not an image (not JPEG, PNG, "
            "GIF, BMP, JPEG XL or WebP)") in errors
    if cpu_host():
        assert len(errors) == 2, errors
    verbose = effnet("predict", f"--model={bare_model}", str(tmp_path / "red.png"),
                     "--verbosity=0", env=user_environment())  # asked for: all of it
    assert verbose.returncode == 0 and "port.cc" in verbose.stderr, verbose.stderr[-3000:]


def test_the_stderr_filter_drops_only_the_startup_lines(tmp_path):
    import os
    import re

    from keras_effnet.console import CPU_HOST_LINES, STARTUP_LINES, filter_lines

    kept = [b"W0000 00:00:1796645368.957530    5574 op_kernel.cc:1858] OP_REQUIRES failed",
            b"E0000 00:00:1796645213.373620    4410 some_op.cc:52] a real error",
            b"effnet export: error: something", b"Traceback (most recent call last):"]
    dropped = [
        b"WARNING: All log messages before absl::InitializeLog() is called are written to "
        b"STDERR",
        b"I0000 00:00:1796645210.437983    4410 port.cc:153] oneDNN custom operations are on. "
        b"You may see slightly different numerical results.",
        b"I0000 00:00:1796645210.438392    4410 cudart_stub.cc:31] Could not find cuda drivers "
        b"on your machine, GPU will not be used.",
        b"E0000 00:00:1796645213.373620    4410 cuda_platform.cc:52] failed call to cuInit: "
        b"INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
        b"W0000 00:00:1796645368.957530    5574 tf_tfl_flatbuffer_helpers.cc:364] Ignored "
        b"output_format.",
        b"fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32, "
        b"output_inference_type: FLOAT32",
        b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."]
    text = b"".join(line + b"\n" for pair in zip(dropped, kept + kept[:3]) for line in pair)
    read, write = os.pipe()
    os.write(write, text + b"a partial line")
    os.close(write)
    out = os.open(tmp_path / "err", os.O_WRONLY | os.O_CREAT)
    filter_lines(read, out, [re.compile(p) for p in STARTUP_LINES + CPU_HOST_LINES])
    os.close(out)
    assert (tmp_path / "err").read_bytes() == b"".join(
        line + b"\n" for line in kept + kept[:3]) + b"a partial line"


def test_help_describes_each_command_in_full_and_usage_shows_its_arguments():
    import inspect

    from keras_effnet.cli import COMMANDS, command_help, general_help

    general = " ".join(general_help().split())  # unwrapped
    for command in COMMANDS.values():
        first = " ".join(inspect.cleandoc(command.__doc__).split("\n\n")[0].split())
        assert first in general, first
    assert command_help("predict").startswith(
        "usage: effnet predict [--flags] IMAGE|FOLDER ...\n")
    assert command_help("serve").startswith("usage: effnet serve [--flags] DIR\n")


def test_cli_errors_name_the_flags_a_library_message_names():
    from keras_effnet.cli import cli_syntax

    assert cli_syntax("pass weights='/w/my model.h5' or weights=None.", "train") == (
        "pass --weights='/w/my model.h5' or --weights=none.")
    assert cli_syntax("verify on more images (verify_count=N, or a larger set), or accept it "
                      "with min_decisive_images=0", "export") == (
        "verify on more images (--verify_count=N, or a larger set), or accept it with "
        "--min_decisive_images=0")
    assert cli_syntax("with weights=None (--weights=none)", "train") == "with --weights=none"
    assert cli_syntax("skip_head=True", "build") == "--skip_head"
    # not a flag of the command, a spec's options, a path, a call written out: as they are
    for text in ("quantize='int8'", "data 'synthetic?train=16&validation=8'", "a/b=c",
                 "synthetic(num_images=5, resolution=8)", "--num_classes=3"):
        assert cli_syntax(text, "train") == text


@pytest.mark.parametrize("args", [
    ["train", "--variant=lite0", "--data=folder:{flat}"],
    ["quickstart", "--data=folder:{flat}"],
    ["eval", "--model={model}", "--data=folder:{flat}"],
    ["export", "--model={model}", "--quantize=int8", "--calibration=folder:{flat}",
     "--verify_data=synthetic"],
    ["search", "--base=lite", "--data=folder:{flat}"],
])
def test_a_flat_folder_spec_fails_before_any_model_work(args, tmp_path):
    """Images directly in the folder (no class sub-folders): a clear error naming the folder
    and the flag, in well under the seconds TensorFlow takes to start."""
    import time

    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("a.jpg", "b.png"):
        (flat / name).write_bytes(b"\xff\xd8\xff")
    flag = next(a for a in args if "folder:" in a).split("=")[0]
    started = time.monotonic()
    result = effnet(*[a.format(flat=flat, model=tmp_path / "m.keras") for a in args],
                    cwd=tmp_path)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"effnet {args[0]}: error: {flag}=folder:{flat}: image folder '{flat}' has no class "
        "sub-folders (its 2 image(s) lie directly in it); expected one sub-folder per class: "
        "PATH/<class>/<image>.jpg|png")
    assert time.monotonic() - started < 10 and sorted(tmp_path.iterdir()) == [flat]
