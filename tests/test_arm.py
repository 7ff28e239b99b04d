"""The main job's TFLite files on ARM kernels: LiteRT's aarch64 build (XNNPACK's NEON, dot-product,
I8MM and SVE2 paths) under user-mode emulation (QEMU 10, `make arm`), against this machine's x86
LiteRT interpreter on the same pixels.

Phones run these files on ARM kernels; everything else in the suite runs x86 ones. Checked on a
little dot-product core (Cortex-A55) and an SVE2 + I8MM core (Cortex-A710), on 64 validation
images of the main job's data and scikit-image's 8 photos: the int8 file within one output
step (its quantization step), the float32 file within 1e-5, and the same top-1 on every
decisive image (the x86 top-1 ahead of its top-2 by more than 0.1). The other cores are in
benchmarks/arm.py's table (benchmarks/results/arm.md). Emulated timings mean nothing.

Large tier: the emulated runs take ~1 min; without `.cache/arm` (`make arm`) the tests skip.
"""

import json
from importlib.metadata import version

import numpy as np
import pytest

from arm import emulator

MISSING = emulator.missing()
pytestmark = [pytest.mark.large, pytest.mark.xdist_group("trained-lite0"),
              pytest.mark.skipif(MISSING is not None, reason=str(MISSING))]

# core -> the features its kernels must be able to use (what the emulated CPU announces)
CORES = {"cortex-a55": {"asimddp"}, "cortex-a710": {"asimddp", "sve2", "i8mm"}}
FILES = {"int8": "model_int8.tflite", "float32": "model_float32.tflite"}
FLOAT_TOLERANCE = 1e-5
MARGIN = 0.1          # a decisive image's top-1/top-2 margin in the x86 output
MIN_DECISIVE = 32     # so that the top-1 check is not vacuous
VALIDATION_IMAGES = 64


def failures(result, kind):
    """What is wrong with an ARM run's comparison (emulator.compare) for a file of `kind`."""
    found = []
    if kind == "int8":
        if result["max_diff_steps"] is None or result["max_diff_steps"] > 1:
            found.append(f"max |Δ| {result['max_diff_steps']} output steps > 1")
    elif result["max_abs_diff"] > FLOAT_TOLERANCE:
        found.append(f"max |Δ| {result['max_abs_diff']:.3g} > {FLOAT_TOLERANCE}")
    if result["decisive_images"] < MIN_DECISIVE:
        found.append(f"only {result['decisive_images']} decisive images (< {MIN_DECISIVE})")
    if result["decisive_top1_agreement"] != 1.0:
        found.append(f"top-1 agreement on decisive images {result['decisive_top1_agreement']}")
    return found


def arm_images(resolution):
    """Pixels as a camera gives them (whole numbers): validation images of the main job's data,
    then scikit-image's 8 photos (centre crops)."""
    from keras_effnet.cli import QUICKSTART_DEFAULTS
    from keras_effnet.data import examples
    from test_torch_weights import _photos

    images = examples(QUICKSTART_DEFAULTS["data"], resolution, VALIDATION_IMAGES)[0]
    return np.round(np.concatenate([images, _photos(size=resolution)])).astype("float32")


@pytest.fixture(scope="module")
def x86(trained, tmp_path_factory):
    """The main job's files, the images (.npy), and each file's x86 outputs and step."""
    summary, run = trained("lite0")
    folder = tmp_path_factory.mktemp("arm")
    inputs = folder / "images.npy"
    np.save(inputs, arm_images(summary["config"]["resolution"]))
    files = {}
    for kind, name in FILES.items():
        outputs = folder / f"{kind}_x86.npy"
        emulator.run_tflite(str(run / name), str(inputs), str(outputs), cpu=None)
        step = emulator.output_step(str(run / name))
        files[kind] = (run / name, np.load(outputs), step)
    return folder, inputs, files


@pytest.mark.parametrize("cpu", list(CORES))
@pytest.mark.parametrize("kind", list(FILES))
def test_arm_kernels_give_the_x86_answers(x86, cpu, kind):
    folder, inputs, files = x86
    path, reference, step = files[kind]
    outputs = folder / f"{kind}_{cpu}.npy"
    said = emulator.run_tflite(str(path), str(inputs), str(outputs), cpu=cpu)
    assert said["machine"] == "aarch64" and CORES[cpu] <= set(said["features"]), said
    assert said["ai_edge_litert"] == version("ai-edge-litert"), \
        f"the emulated runtime is {said['ai_edge_litert']}, not the venv's: run `make arm`"
    result = emulator.compare(reference, np.load(outputs), step, MARGIN)
    assert result["images"] == VALIDATION_IMAGES + 8
    assert not failures(result, kind), json.dumps({**result, **said, "output_step": step})
