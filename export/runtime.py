"""Run exported artifacts in their real runtimes: the LiteRT interpreter and onnxruntime.

Both runners take float32 pixel batches and return float32 outputs, quantising and
de-quantising integer inputs/outputs with the tensors' own scale and zero point.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import numpy as np

from keras_effnet.errors import InvalidArgument, MissingFile


class TFLiteRunner:
    """A `.tflite` file (or flatbuffer bytes) in `ai_edge_litert.interpreter.Interpreter`."""

    def __init__(self, model: str | bytes, num_threads: int = 2) -> None:
        from ai_edge_litert.interpreter import Interpreter

        kwargs = {"model_content": model} if isinstance(model, bytes) else {"model_path": model}
        self.interpreter = Interpreter(num_threads=num_threads, **kwargs)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    @property
    def input_dtype(self) -> str:
        return np.dtype(self.input["dtype"]).name

    def _quantize(self, image: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if np.issubdtype(dtype, np.floating):
            return image.astype(dtype)
        scale, zero = self.input["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(image / scale + zero), info.min, info.max).astype(dtype)

    def run_one(self, image: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input["index"], self._quantize(image[None]))
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self.output["index"])
        if not np.issubdtype(out.dtype, np.floating):
            scale, zero = self.output["quantization"]
            out = (out.astype("float32") - zero) * scale
        return out[0].astype("float32")

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return np.stack([self.run_one(image) for image in images])


class ONNXRunner:
    """An `.onnx` file in an onnxruntime CPU session (dynamic batch).

    `num_threads` pins the intra-op pool; `spinning=False` (the default) makes its threads
    sleep between ops instead of spinning: spinning threads compete with the caller for the
    cores, which made 2 threads 3-4x slower than 1 on a 2-core machine (BUILD_NOTES.md).
    On a dedicated many-core server, `spinning=True` can shave the wake-up latency.
    """

    def __init__(self, path: str, num_threads: int = 2, spinning: bool = False) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning",
                                         "1" if spinning else "0")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: images.astype("float32")})[0]

    def run_one(self, image: np.ndarray) -> np.ndarray:
        return self(image[None])[0]


def runner_for(path: str, num_threads: int = 2) -> Any:
    if not os.path.isfile(path):
        raise MissingFile(f"artifact not found: {path!r}")
    if path.endswith(".tflite"):
        return TFLiteRunner(path, num_threads)
    if path.endswith(".onnx"):
        return ONNXRunner(path, num_threads)
    raise InvalidArgument(f"{path!r}: accepted artifacts end in .tflite or .onnx")


def median_latency_ms(runner: Any, image: np.ndarray, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time of one single-image inference, in milliseconds."""
    for _ in range(warmup):
        runner.run_one(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner.run_one(image)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
