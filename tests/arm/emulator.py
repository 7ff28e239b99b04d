"""Run a TFLite file in LiteRT's aarch64 build under user-mode emulation (`qemu-aarch64 -cpu
CORE -L SYSROOT`), and compare its outputs with this machine's. What `make arm` set up
(tests/arm/setup_arm.py) lives in `.cache/arm/`; the emulated Python runs run_tflite.py.

Standard library (and numpy for `compare`) only: tests/test_arm.py and benchmarks/arm.py use it.

Emulation checks which numbers the ARM kernels compute, not how fast: TCG translates every
instruction, so emulated timings mean nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE = os.path.join(ROOT, ".cache", "arm")
QEMU = os.path.join(CACHE, "qemu", "usr", "bin", "qemu-aarch64")
SYSROOT = os.path.join(CACHE, "sysroot")
SITE = os.path.join(CACHE, "site")
PYTHON = os.path.join(SYSROOT, "usr", "bin", "python3.11")
RUNNER = os.path.join(HERE, "run_tflite.py")

# The cores checked, with the int8 instructions each offers XNNPACK (Arm's feature names, as
# the emulated /proc/cpuinfo lists them): a phone's little and big cores of two generations and
# a server core for each.
CORES = {
    "cortex-a55": "dot product (asimddp)",
    "cortex-a76": "dot product (asimddp)",
    "cortex-a710": "SVE2, I8MM, dot product",
    "neoverse-n1": "dot product (asimddp)",
    "neoverse-n2": "SVE2, I8MM, dot product",
    "neoverse-v1": "SVE, I8MM, dot product",
}


def missing() -> str | None:
    """Why the emulator cannot run here (None when it can)."""
    if sys.platform != "linux":
        return f"ARM emulation runs on Linux hosts only (this is {sys.platform})"
    if not os.path.exists(os.path.join(CACHE, "manifest.json")):
        return f"no ARM emulator set up in {CACHE}: run `make arm`"
    for path in (QEMU, PYTHON, SITE):
        if not os.path.exists(path):
            return f"{path} is missing: run `make arm` again (or rm -rf {CACHE} first)"
    return None


def manifest() -> dict[str, Any]:
    """What `make arm` fetched (versions, hashes) and its smoke check's answer."""
    with open(os.path.join(CACHE, "manifest.json")) as f:
        return json.load(f)


def command(cpu: str, *args: str, qemu: str | None = None) -> list[str]:
    """The command line that runs the emulated Python on core `cpu` with `args` (`qemu`:
    another qemu-aarch64 than `make arm`'s)."""
    return [qemu or QEMU, "-cpu", cpu, "-L", SYSROOT, PYTHON, "-s", *args]


def environment() -> dict[str, str]:
    """The emulated Python's whole environment: the wheels on its path, nothing of the host's
    Python settings (no PYTHONHOME, no LD_PRELOAD)."""
    return {"PYTHONPATH": SITE, "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin", "HOME": CACHE,
            "TF_CPP_MIN_LOG_LEVEL": "2"}


def qemu_version(qemu: str | None = None) -> str:
    """'qemu-aarch64 version 10.0.x (Debian …)', the first line qemu prints."""
    done = subprocess.run([qemu or QEMU, "--version"], capture_output=True, text=True, timeout=60)
    return done.stdout.splitlines()[0].strip() if done.stdout else "unknown"


def run_tflite(model: str, inputs: str, outputs: str, cpu: str | None, threads: int = 1,
               timeout: float = 900, qemu: str | None = None) -> dict[str, Any]:
    """Run run_tflite.py on `model` with the images of `inputs` (.npy), writing `outputs`
    (.npy): under emulation on core `cpu`, or with this interpreter (cpu=None: the x86
    reference, the same script; `qemu`: another qemu-aarch64 than `make arm`'s). Returns what
    the runner reports (machine, CPU features, runtime version, seconds)."""
    args = [RUNNER, model, inputs, outputs, f"--threads={threads}"]
    if cpu is None:
        cmd, env = [sys.executable, *args], {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    else:
        cmd, env = command(cpu, *args, qemu=qemu), environment()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} … {os.path.basename(model)} on "
                           f"{cpu or 'this host'} exited {done.returncode}:\n"
                           + done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def output_step(model: str) -> float | None:
    """The quantization step of a file's scores, read with this host's LiteRT: the output's
    scale when it is an integer tensor, else the scale of the integer tensor that the final
    DEQUANTIZE turns into the float output (an int8 file with float I/O); None for a float
    model."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=model)
    output = interpreter.get_output_details()[0]
    if output["dtype"].__name__.startswith(("int", "uint")):
        return float(output["quantization"][0])
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    for op in interpreter._get_ops_details():  # noqa: SLF001 - LiteRT's only op listing
        if op["op_name"] == "DEQUANTIZE" and output["index"] in list(op["outputs"]):
            scale = float(tensors[int(op["inputs"][0])]["quantization"][0])
            return scale or None
    return None


def compare(reference: Any, found: Any, step: float | None, margin: float = 0.1
            ) -> dict[str, Any]:
    """ARM outputs `found` against the x86 `reference` (images × classes): the largest
    difference (also in output steps when `step`, the output's quantization step, is given),
    and top-1 agreement over all images and over the decisive ones (the reference's top-1 ahead
    of its top-2 by more than `margin`)."""
    import numpy as np

    reference = np.asarray(reference, "float64")
    found = np.asarray(found, "float64")
    if reference.shape != found.shape:
        raise ValueError(f"output shapes differ: {reference.shape} vs {found.shape}")
    ranked = np.sort(reference, axis=-1)
    decisive = ranked[:, -1] - ranked[:, -2] > margin
    agree = reference.argmax(-1) == found.argmax(-1)
    diff = float(np.max(np.abs(reference - found))) if reference.size else 0.0
    return {"images": int(len(reference)), "decisive_images": int(decisive.sum()),
            "max_abs_diff": diff,
            "max_diff_steps": None if not step else round(diff / step, 3),
            "bit_exact": bool(np.array_equal(reference, found)),
            "differing_scores": f"{int(np.sum(reference != found))}/{reference.size}",
            "top1_agreement": float(agree.mean()),
            "decisive_top1_agreement": float(agree[decisive].mean()) if decisive.any() else None}
