"""Shared fixtures. Tests run on CPU at small resolutions; see docs/design.md, "Conventions"."""

import json
import os
import shutil
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# pytest-xdist workers share the cores: TensorFlow's thread pools, one thread per core in each
# worker, made them compete; each worker's share of the cores is faster (BUILD_NOTES.md, "Test
# suite time and tiers"). Without xdist TensorFlow keeps its own choice.
_SHARE = str(max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", 1))))
TEST_THREADS = ({"TF_NUM_INTRAOP_THREADS": _SHARE, "TF_NUM_INTEROP_THREADS": _SHARE}
                if "PYTEST_XDIST_WORKER" in os.environ else {})
for _name, _value in TEST_THREADS.items():
    os.environ.setdefault(_name, _value)

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def pixels():
    """Random RGB pixels in [0, 255], as the models expect."""
    def make(batch, height, width=None, seed=0):
        rng = np.random.default_rng(seed)
        return rng.uniform(0, 255, (batch, height, width or height, 3)).astype("float32")
    return make


SHORT_DATA = "synthetic?train=960&validation=240"
# lite0 is trained by the main job itself, `effnet quickstart`, with its own defaults (the
# ImageNet Lite0 fine-tuned at 64 px for 4 epochs on the embedded set: ~0.98 held-out top-1).
QUICKSTART_FLAGS: list[str] = []
# Other variants train from scratch at 48 px: the short recipe at twice its learning rate.
SCRATCH_LEARNING_RATE = 0.048  # = keras_effnet.cli.QUICKSTART_LEARNING_RATES["from scratch"]
_TRAINED = {}
_QUICKSTART = {}


def effnet(*args, cwd=None, timeout=300, umask=-1, env=None):
    """The `effnet` console script, run as a user runs it (a subprocess; `umask`: its umask;
    `env`: its environment, default this one)."""
    exe = shutil.which("effnet") or os.path.join(os.path.dirname(sys.executable), "effnet")
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, check=False, umask=umask, env=env)


def effnet_in_process(*args, umask=None):
    """`effnet ARGS` in this process (`keras_effnet.cli.main.main`, what the console script
    dispatches to), as a CompletedProcess (exit status, stdout, stderr) like `effnet`'s: for
    tests of a command's work, not of a process starting; `umask`: this process's umask while
    it runs."""
    import contextlib
    import io

    from keras_effnet.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    previous = os.umask(umask) if umask is not None else None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["effnet", *args])
    finally:
        if previous is not None:
            os.umask(previous)
    return subprocess.CompletedProcess(["effnet", *args], code, out.getvalue(), err.getvalue())


def user_environment():
    """This environment without what this file sets for the tests (TensorFlow's log level,
    no GPU, its threads): the one a user's shell gives `effnet`."""
    return {k: v for k, v in os.environ.items()
            if k not in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES", *TEST_THREADS)}


def kill_after_epochs(command, history, epochs, env, timeout=400):
    """Start a training command in its own process group and SIGKILL it once its history
    holds `epochs` rows (a run killed mid-training)."""
    import signal
    import time

    from keras_effnet.train import read_history

    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and len(read_history(history)) < epochs:
            assert process.poll() is None, "training ended before it could be killed"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def trained_variant(variant, *marks):
    """A test parameter for a variant that uses `trained(variant)`: under pytest-xdist all such
    tests run in one worker (`--dist loadgroup`), which trains that variant once."""
    return pytest.param(variant, marks=[pytest.mark.xdist_group(f"trained-{variant}"), *marks])


# lite0 is the main job's model (default tier); the trained b0 runs in the `large` tier only
# (`make test-large`): SE + swish structure is checked on a tiny model in the default tier.
TRAINED_VARIANTS = [trained_variant("lite0"), trained_variant("b0", pytest.mark.large)]


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Train a variant once per session; returns (summary, output folder). Shared by the
    training, export, app and main-job tests: lite0 comes from `effnet quickstart` (see
    `quickstart_run`), other variants from `keras_effnet.train.train` (48 px, 12 epochs of
    SHORT_DATA from scratch)."""
    def get(variant):
        if variant not in _TRAINED:
            out = tmp_path_factory.mktemp(f"trained-{variant}")
            if variant == "lite0":
                # in this process: the command's work (its process start is checked by
                # test_quickstart_bad_data_fails_clearly_and_writes_nothing)
                result = effnet_in_process("quickstart", *QUICKSTART_FLAGS, f"--out={out}")
                _QUICKSTART[variant] = result
                if result.returncode != 0:
                    pytest.fail("effnet quickstart failed:\n" + result.stdout[-3000:]
                                + result.stderr[-3000:])
                with open(out / "summary.json") as f:
                    summary = json.load(f)
            else:
                from keras_effnet.train import Recipe, train

                recipe = Recipe.named("short", learning_rate=SCRATCH_LEARNING_RATE)
                summary = train(variant, data=SHORT_DATA, epochs=12, batch_size=32,
                                resolution=48, recipe=recipe, out=str(out), verbose=0,
                                weights=None)
            _TRAINED[variant] = (summary, out)
        return _TRAINED[variant]
    return get


@pytest.fixture(scope="session")
def quickstart_run(trained):
    """(CompletedProcess, output folder) of the `effnet quickstart` run that trained lite0."""
    _, out = trained("lite0")
    return _QUICKSTART["lite0"], out


@pytest.fixture(scope="session")
def quickstart_model(trained):
    """The main job's lite0 (its model.keras), loaded once for the tests that only run it."""
    import keras_effnet

    return keras_effnet.load_model(trained("lite0")[1] / "model.keras", compile=False)


@pytest.fixture(scope="session")
def uint8_export(trained, tmp_path_factory):
    """`effnet export --quantize=int8 --io_dtype=uint8 --out=DIR/` of the main job's lite0, run
    once (in this process, umask 027) with no data flag: what it returned, printed and wrote.
    The one int8 conversion of the trained lite0 besides the main job's own; the tests of the
    CLI's data choice, of raw uint8 pixels and of MediaPipe Tasks read it."""
    from types import SimpleNamespace

    _, run = trained("lite0")
    folder = tmp_path_factory.mktemp("uint8-export") / "deploy"
    result = effnet_in_process(
        "export", f"--model={run / 'model.keras'}", "--quantize=int8", "--io_dtype=uint8",
        f"--out={folder}/", umask=0o027)
    return SimpleNamespace(returncode=result.returncode, stdout=result.stdout,
                           stderr=result.stderr, run=run, folder=folder,
                           path=folder / "model_int8.tflite")


# The web app's runtime and browser (tests/test_browser.py, tests/test_clients.py).
RUNTIME_CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             ".cache", "tasks-vision")


@pytest.fixture(scope="session")
def runtime():
    """The pinned runtime's `npm pack` tarball (`make browser` puts it in .cache/)."""
    from keras_effnet.export.webapp import TASKS_VISION_VERSION

    tarball = os.path.join(RUNTIME_CACHE, f"mediapipe-tasks-vision-{TASKS_VISION_VERSION}.tgz")
    if not os.path.exists(tarball) and shutil.which("npm"):
        os.makedirs(RUNTIME_CACHE, exist_ok=True)
        subprocess.run(["npm", "pack", "--silent", f"@mediapipe/tasks-vision@"
                        f"{TASKS_VISION_VERSION}"], cwd=RUNTIME_CACHE, timeout=300,
                       capture_output=True, check=False)
    if not os.path.exists(tarball):
        pytest.fail(f"{tarball} is missing and npm could not make it: run `make browser`")
    return tarball


@pytest.fixture(scope="session")
def chromium():
    """The headless Chromium the page tests drive (tests/chromium_client.py)."""
    from chromium_client import find_chromium

    found = find_chromium()
    if not found:
        pytest.skip("no Chromium on this machine (`make test` installs Debian's chromium; "
                    "elsewhere: apt-get install chromium)")
    return found
