"""Which layers an int8 file loses its accuracy in, and the file with the worst kept in float.

TensorFlow Lite's quantization debugger (`tf.lite.experimental.QuantizationDebugger`) takes
the converter `export/tflite.py` configures (its calibration images, its settings), calibrates
once, and builds a debug model in which every quantized op runs beside its float op on the
same (quantized) input; its statistics per layer are the error of the int8 op against the
float op: mean squared error, max |error|, mean error, its deviation, and the output's scale
and zero point. Two figures are added from one more pass over the debug model: the layer's
SQNR (its float output's power over that error, dB) and its *channel SQNR*, the median over
its output channels of each channel's SQNR. An activation tensor is quantized with one scale
for all its channels, so a channel with outliers (a range hundreds of times the others') sets
a step that crushes the other channels to a few levels: the tensor's SQNR, dominated by the
outlier channel's power, stays high while the channel SQNR falls. Layers are ranked worst
first by channel SQNR.

Keeping a layer in float (the debugger's selective quantization, `denylisted_nodes`) makes
its output a float tensor; an int8 op reading it quantizes it again with the same calibrated
range, which would give the crushed channels nothing back. So a layer kept in float keeps
the ops reading its output in float too (`float_nodes`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import warnings
from typing import Any

import numpy as np

from keras_effnet.errors import InvalidArgument
from keras_effnet.files import atomic_path

CSV_FIELDS = ("rank", "layer", "op", "channel_sqnr_db", "sqnr_db", "mean_squared_error",
              "rmse_over_scale", "max_abs_error", "mean_error", "stddev", "scale", "zero_point",
              "num_elements")
_CAP_DB = 99.0  # a channel (or layer) whose int8 values equal its float ones
_NUMERIC_VERIFY = "NumericVerify"


@dataclasses.dataclass
class LayerStatistics:
    """The quantized layers of one int8 conversion, worst first (`rows`: CSV_FIELDS), with
    the debugger that builds int8 files of that calibration (`model`) and, for each layer,
    the ops that read its output (`readers`)."""
    rows: list[dict[str, Any]]
    debugger: Any
    readers: dict[str, list[str]]

    def model(self, float_nodes: list[str], io_dtype: str = "float32") -> bytes:
        """The int8 flatbuffer of this calibration with `float_nodes` (op output names) in
        float: plain int8 when empty (the same ops and outputs as `converter.convert()`)."""
        import tensorflow as tf

        from keras_effnet.export.tflite import finished

        with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice
            warnings.simplefilter("ignore")
            self.debugger.options = tf.lite.experimental.QuantizationDebugOptions(
                denylisted_nodes=list(float_nodes) or None)
            flatbuffer = self.debugger.get_nondebug_quantized_model()
        if io_dtype != "float32":  # the converter's inference_input/output_type
            from tensorflow.lite.python.util import modify_model_io_type

            dtype = getattr(tf, io_dtype)
            flatbuffer = modify_model_io_type(flatbuffer, dtype, dtype)
        return finished(bytes(flatbuffer), io_dtype)


def layer_statistics(conversion: Any) -> LayerStatistics:
    """Run the quantization debugger on a configured int8 conversion
    (`tflite.configured(...)`), its debug data the calibration images."""
    import tensorflow as tf

    if conversion.quantization_aware:
        raise InvalidArgument("the layer report and float_layers apply to post-training int8; "
                              "a quantization-aware model's ranges come from its training")
    images = conversion.images

    def dataset():
        return ([image[None]] for image in images)

    with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice
        warnings.simplefilter("ignore")
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=conversion.converter, debug_dataset=dataset)
        debugger.run()
        dump = io.StringIO()
        debugger.layer_statistics_dump(dump)
        signal = _signal(debugger.quant_model, images)
    rows = []
    for row in csv.DictReader(io.StringIO(dump.getvalue())):
        sqnr, channel = signal[int(row["tensor_idx"])]
        mse = float(row["mean_squared_error"])
        scale = float(row["scale"])
        rows.append({"layer": row["tensor_name"], "op": row["op_name"],
                     "channel_sqnr_db": round(channel, 2), "sqnr_db": round(sqnr, 2),
                     "mean_squared_error": mse,
                     "rmse_over_scale": round(math.sqrt(mse) / scale, 4) if scale else None,
                     "max_abs_error": float(row["max_abs_error"]),
                     "mean_error": float(row["mean_error"]), "stddev": float(row["stddev"]),
                     "scale": scale, "zero_point": int(row["zero_point"]),
                     "num_elements": int(float(row["num_elements"]))})
    rows.sort(key=lambda r: (r["channel_sqnr_db"], r["sqnr_db"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return LayerStatistics(rows, debugger, _readers(debugger.calibrated_model))


def _db(power: float, noise: float) -> float:
    return _CAP_DB if noise <= 0 else min(_CAP_DB, 10 * math.log10(max(power, 1e-30) / noise))


def _signal(debug_model: bytes, images: np.ndarray) -> dict[int, tuple[float, float]]:
    """{quantized tensor index: (SQNR dB, channel SQNR dB)} of each layer of the
    debug model, summed over `images`: each NumericVerify op compares a quantized tensor
    with the float op's output from the same input."""
    from tensorflow.lite.python.interpreter import Interpreter
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(debug_model))
    codes = [code.customCode for code in model.operatorCodes]
    pairs = [(int(op.inputs[0]), int(op.inputs[1])) for op in model.subgraphs[0].operators
             if codes[op.opcodeIndex] in (_NUMERIC_VERIFY, _NUMERIC_VERIFY.encode())]
    interpreter = Interpreter(model_content=bytes(debug_model),
                              experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    sums: dict[int, list[np.ndarray]] = {}
    for image in images:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                               image[None].astype("float32"))
        interpreter.invoke()
        for quantized, reference in pairs:
            scale, zero = details[quantized]["quantization"]
            got = (interpreter.get_tensor(quantized).astype("float64") - zero) * scale
            want = interpreter.get_tensor(reference).astype("float64")
            channels = want.shape[-1] if want.ndim else 1
            power = np.square(want).reshape(-1, channels).sum(0)
            noise = np.square(got - want).reshape(-1, channels).sum(0)
            if quantized in sums:
                sums[quantized][0] += power
                sums[quantized][1] += noise
            else:
                sums[quantized] = [power, noise]
    result = {}
    for index, (power, noise) in sums.items():
        live = power > 0  # channels a ReLU kept at 0 on every image say nothing
        channel = (float(np.median([_db(p, n) for p, n in zip(power[live], noise[live])]))
                   if live.any() else _CAP_DB)
        result[index] = (_db(float(power.sum()), float(noise.sum())), channel)
    return result


def _readers(calibrated_model: bytes) -> dict[str, list[str]]:
    """{tensor name: the output names of the ops that read it} in the calibrated float
    model (the names `denylisted_nodes` takes)."""
    from tensorflow.lite.tools import flatbuffer_utils

    graph = flatbuffer_utils.convert_bytearray_to_object(
        bytearray(calibrated_model)).subgraphs[0]
    names = [_text(tensor.name) for tensor in graph.tensors]
    readers: dict[str, list[str]] = {}
    for op in graph.operators:
        outputs = [names[i] for i in op.outputs if i >= 0]
        for i in op.inputs:
            if i >= 0:
                readers.setdefault(names[i], []).extend(outputs)
    return readers


def _text(name: Any) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)


def float_nodes(statistics: LayerStatistics, count: int) -> list[str]:
    """What `float_layers=count` keeps in float: the `count` worst layers and the ops that
    read their outputs (op output names, for `denylisted_nodes`)."""
    rows = statistics.rows
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count < len(rows):
        raise InvalidArgument(f"float_layers={count!r}; accepted: 0..{len(rows) - 1} (this "
                              f"model has {len(rows)} quantized layers; for all of them in "
                              "float export quantize='float16')")
    nodes: list[str] = []
    for row in rows[:count]:
        for name in [row["layer"], *statistics.readers.get(row["layer"], [])]:
            if name not in nodes:
                nodes.append(name)
    return nodes


def write_csv(rows: list[dict[str, Any]], path: str) -> None:
    """The layer report as a CSV (CSV_FIELDS, one row per quantized layer, worst first),
    written atomically."""
    with atomic_path(path) as staged, open(staged, "w", newline="") as f:
        writer = csv.DictWriter(f, CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def worst(rows: list[dict[str, Any]], count: int = 5) -> list[dict[str, Any]]:
    """The `count` worst layers, as a report keeps them."""
    return [{key: row[key] for key in ("rank", "layer", "op", "channel_sqnr_db", "sqnr_db",
                                       "scale")} for row in rows[:count]]


def short(layer: str) -> str:
    """A layer's name as printed: the first of the names TensorFlow fused into its tensor's
    (the CSV and the report keep the whole name, which `denylisted_nodes` takes)."""
    return layer.split(";")[0]


def worst_text(rows: list[dict[str, Any]], float_layers: int = 0) -> str:
    """The worst layers in one sentence, and the next step."""
    listed = ", ".join(f"{short(row['layer'])} ({row['op']}, channel SQNR "
                       f"{row['channel_sqnr_db']:g} dB)" for row in rows)
    step = (f"keep more of them in float (float_layers={float_layers * 2})" if float_layers
            else "keep the worst in float with float_layers=N (start at 1; the report gives "
                 "the size and latency each costs)")
    return f"the worst int8 layers: {listed}; {step}"


def plain_int8(flatbuffer: bytes, path: str, model: Any, images: np.ndarray,
               targets: np.ndarray | None, num_threads: int,
               limits: dict[str, float | None]) -> dict[str, Any]:
    """The plain int8 file measured as verification measures an artifact (same images, same
    runtime and threads), gates off: what `float_layers` is compared against."""
    import os
    import tempfile

    from keras_effnet.export.verify import verify

    gates = {name: None for name in limits if name != "near_tie_margin"}
    with tempfile.TemporaryDirectory() as folder:
        staged = os.path.join(folder, os.path.basename(path))
        with open(staged, "wb") as f:
            f.write(flatbuffer)
        report = verify(staged, model, images, targets, kind="int8", num_threads=num_threads,
                        thresholds={**gates, "near_tie_margin": limits["near_tie_margin"]})
    return {key: report[key] for key in ("size_bytes", "median_latency_ms", "sqnr_db",
                                         "top1_agreement", "decisive_agreement",
                                         "artifact_accuracy") if key in report}


def float_layers_cost(report: dict[str, Any], plain: dict[str, Any]) -> dict[str, Any]:
    """The report's `float_layers` entry with what keeping them in float cost and bought
    against the plain int8 file: bytes, milliseconds of one image, dB of SQNR, accuracy."""
    entry = {**report.get("float_layers", {}), "plain_int8": plain,
             "size_bytes_added": report["size_bytes"] - plain["size_bytes"],
             "latency_ms_added": round(report["median_latency_ms"]
                                       - plain["median_latency_ms"], 3)}
    if report["sqnr_db"] is not None and plain["sqnr_db"] is not None:
        entry["sqnr_db_gained"] = round(report["sqnr_db"] - plain["sqnr_db"], 2)
    if "artifact_accuracy" in report and "artifact_accuracy" in plain:
        entry["accuracy_gained"] = round(report["artifact_accuracy"]
                                         - plain["artifact_accuracy"], 4)
    return entry
