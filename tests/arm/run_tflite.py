"""Run a .tflite file on a batch of images, one image per invoke, and save its outputs.

Runs INSIDE the emulated aarch64 Python (standard library, numpy and ai_edge_litert only), and
on the host as the x86 reference: the same code both sides.

    python run_tflite.py MODEL.tflite INPUTS.npy OUTPUTS.npy [--threads=1]

INPUTS: float32 pixels (images × height × width × 3, in [0, 255]); an integer input is fed the
pixels quantized with the input's own scale and zero point. OUTPUTS: the output tensor of each
image as the file gives it (dtype kept). Prints one JSON line: the machine, the CPU features
the kernels can see, the runtime's version and the seconds spent invoking.
"""

import ctypes
import json
import platform
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter

# Linux's aarch64 hwcap bits (asm/hwcap.h) that pick XNNPACK's int8 kernels.
HWCAP = {"asimddp": (16, 1 << 20), "sve": (16, 1 << 22), "sve2": (26, 1 << 1),
         "i8mm": (26, 1 << 13), "bf16": (26, 1 << 14)}


def features():
    """The int8-relevant features the kernel (here: qemu) announces, from getauxval."""
    if platform.machine() != "aarch64":
        return []
    getauxval = ctypes.CDLL(None).getauxval
    getauxval.restype = ctypes.c_ulong
    getauxval.argtypes = [ctypes.c_ulong]
    return [name for name, (kind, bit) in HWCAP.items() if getauxval(kind) & bit]


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    threads = int(next((a.split("=", 1)[1] for a in argv if a.startswith("--threads=")), 1))
    if len(args) != 3:
        sys.exit(__doc__)
    model, inputs, outputs = args
    interpreter = Interpreter(model_path=model, num_threads=threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    images = np.load(inputs).astype("float32")
    if np.issubdtype(inp["dtype"], np.integer):
        scale, zero = inp["quantization"]
        info = np.iinfo(inp["dtype"])
        images = np.clip(np.round(images / scale + zero), info.min, info.max)
    images = images.astype(inp["dtype"])
    results, seconds = [], 0.0
    for image in images:
        interpreter.set_tensor(inp["index"], image[None])
        started = time.perf_counter()
        interpreter.invoke()
        seconds += time.perf_counter() - started
        results.append(interpreter.get_tensor(out["index"])[0].copy())
    np.save(outputs, np.stack(results))
    try:
        from importlib.metadata import version
        runtime = version("ai-edge-litert")
    except Exception:  # noqa: BLE001 - a version is a nicety
        runtime = "unknown"
    print(json.dumps({"machine": platform.machine(), "features": features(),
                      "ai_edge_litert": runtime, "numpy": np.__version__,
                      "images": len(images), "invoke_s": round(seconds, 3)}))


if __name__ == "__main__":
    main(sys.argv[1:])
