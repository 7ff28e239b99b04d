"""Does a TFLite file run wholly on the GPU delegate? A static check of every op.

Two sources, both static (nothing here runs on a GPU):

- TensorFlow Lite's model analyzer, `tf.lite.experimental.Analyzer.analyze(model_content=…,
  gpu_compatibility=True)`. In TF 2.21 its C++ half returns the text and its Python half
  prints it; `analyzer_text` captures both Python's stdout and file descriptor 1 (should a
  later version print from C++). Its verdict line and any "GPU COMPATIBILITY WARNING" lines
  are kept. But the analyzer of TF 2.21 (and of ai-edge-litert 2.3) no longer checks any op:
  its model_analyzer.cc never fills its list of incompatible nodes, so every file "looks
  compatible" (measured: an ARG_MAX, a 3-input ADD_N, a SYMMETRIC MIRROR_PAD, a LOG_SOFTMAX,
  all refused by the delegate's rules). Its verdict alone would pass anything.
- So every op is also checked against the GPU delegate's own rules (`op_problem`): LiteRT's
  tflite/tools/versioning/gpu_compatibility.cc (`CheckGpuDelegateCompatibility`, offline
  mode, as the analyzer used to call it), in its words: the builtin ops the delegate takes,
  and the conditions on them that can occur in a converted image classifier (fused
  activation, input counts, constant axes, reduction and padding shapes, slice masks, cast
  types, softmax beta, custom ops). Ops outside that list fall back to the CPU ("Not
  supported op X"). Conditions that only a malformed graph could break are not repeated. A
  DEQUANTIZE of a constant (a float16 file's weights) counts as a constant, as the runtime
  keeps it (the delegate takes float16 files: they are the format meant for it).

What a static check cannot show is left to a device: speed, driver and OpenCL/Metal bugs, and
the precision of the GPU's fp16 arithmetic (docs/export.md, "GPU delegate").
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import sys
import tempfile
from typing import Any

# The builtin ops the delegate takes (the cases of CheckGpuDelegateCompatibility).
GPU_OPS = frozenset("""
ABS ADD ADD_N ATAN2 AVERAGE_POOL_2D BATCH_MATMUL BITCAST CAST CEIL CONCATENATION CONV_2D COS
CUMSUM DENSIFY DEPTH_TO_SPACE DEPTHWISE_CONV_2D DEQUANTIZE DIV DYNAMIC_UPDATE_SLICE ELU
EMBEDDING_LOOKUP EQUAL EXP FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GELU GREATER
GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGICAL_NOT LOGICAL_OR
LOGISTIC LSTM MAX_POOL_2D MAXIMUM MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT PACK PAD
PADV2 POW PRELU QUANTIZE REDUCE_ALL REDUCE_ANY REDUCE_MAX REDUCE_MIN REDUCE_PROD RELU RELU6
RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR REVERSE_V2 RIGHT_SHIFT ROUND
RSQRT SELECT SELECT_V2 SIGN SIN SLICE SOFTMAX SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE
SQUARED_DIFFERENCE STABLEHLO_BROADCAST_IN_DIM STABLEHLO_CBRT STABLEHLO_CLAMP
STABLEHLO_REMAINDER STABLEHLO_SHIFT_LEFT STRIDED_SLICE SUB SUM TANH TILE TOPK_V2 TRANSPOSE
TRANSPOSE_CONV""".split())
GPU_CUSTOM_OPS = frozenset({"Convolution2DTransposeBias", "MaxPoolingWithArgmax2D",
                            "MaxUnpooling2D", "Resampler"})
_ONE_INPUT = frozenset("ABS CEIL COS ELU EXP FLOOR GELU LOG LOGICAL_NOT LOGISTIC NEG ROUND RSQRT "
                       "SIGN SIN SQRT SQUARE TANH".split())
_TWO_INPUTS = frozenset("ATAN2 DIV EQUAL FLOOR_DIV FLOOR_MOD GREATER GREATER_EQUAL LOGICAL_AND "
                        "LOGICAL_OR LESS LESS_EQUAL MAXIMUM MINIMUM NOT_EQUAL POW RIGHT_SHIFT "
                        "STABLEHLO_REMAINDER STABLEHLO_SHIFT_LEFT SQUARED_DIFFERENCE SUB".split())
_REDUCTIONS = frozenset("MEAN REDUCE_ALL REDUCE_ANY REDUCE_MAX REDUCE_MIN REDUCE_PROD SUM "
                        "REVERSE_V2".split())
_ONE_RUNTIME_INPUT = frozenset("DEPTH_TO_SPACE HARD_SWISH QUANTIZE RESHAPE RESIZE_BILINEAR "
                               "RESIZE_NEAREST_NEIGHBOR SPACE_TO_DEPTH TILE TRANSPOSE".split())
_SIGN_BIT = 5  # ActivationFunctionType.SIGN_BIT: the one fused activation the delegate lacks
_CAST_OK = {("BOOL", "FLOAT16"), ("BOOL", "FLOAT32"), ("FLOAT16", "BOOL"), ("FLOAT32", "BOOL"),
            ("FLOAT32", "FLOAT32"), ("FLOAT32", "INT32"), ("INT32", "FLOAT32"),
            ("INT32", "INT32")}


def analyzer_text(flatbuffer: bytes) -> str:
    """What `tf.lite.experimental.Analyzer.analyze(model_content=…, gpu_compatibility=True)`
    prints, from Python and from C++ (file descriptor 1) alike. For that call, file
    descriptor 1 of the whole process goes to a temporary file."""
    import tensorflow as tf

    sys.stdout.flush()
    with tempfile.TemporaryFile() as native, \
            contextlib.redirect_stdout(io.StringIO()) as python:
        saved = os.dup(1)
        try:
            os.dup2(native.fileno(), 1)
            tf.lite.experimental.Analyzer.analyze(model_content=flatbuffer,
                                                  gpu_compatibility=True)
        finally:
            _flush_c_stdout()
            os.dup2(saved, 1)
            os.close(saved)
        native.seek(0)
        return python.getvalue() + native.read().decode("utf-8", "replace")


def _flush_c_stdout() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to flush (not Linux/macOS)
        pass


def analyzer_findings(text: str) -> tuple[str | None, dict[int, str]]:
    """(the analyzer's verdict line, {op index: its GPU COMPATIBILITY WARNING}) of its text:
    a warning line follows the `Op#N` line of the op it is about."""
    verdict, warnings, op = None, {}, None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("Op#"):
            op = int(stripped[3:].split()[0])
        elif stripped.startswith("GPU COMPATIBILITY WARNING:"):
            message = stripped.split(":", 1)[1].strip()
            if op is not None and not message.startswith("Subgraph#"):
                warnings[op] = message
            elif verdict is None:
                verdict = stripped
        elif stripped.startswith("Your model looks compatible with GPU delegate"):
            verdict = stripped
    return verdict, warnings


def op_problem(name: str, options: Any, inputs: list[dict], outputs: list[dict]) -> str | None:
    """Why the GPU delegate would not take one op (its own message), or None. `inputs` /
    `outputs`: {"type", "shape", "const"} of each tensor (None for an absent optional one)."""
    present = [t for t in inputs if t is not None]
    runtime = [t for t in present if not t["const"]]
    if name == "CUSTOM":
        return None if options in GPU_CUSTOM_OPS else f"Not supported custom op {options}"
    if name not in GPU_OPS:
        return f"Not supported op {name}"
    activation = getattr(options, "fusedActivationFunction", 0)
    if activation == _SIGN_BIT:
        return "TfLiteFusedActivation.kTfLiteActSignBit"
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV") and len(runtime) > 2:
        return f"Expected 1 or 2 input tensor(s), but node has {len(runtime)} runtime inputs."
    if name in ("ADD", "MUL") and len(inputs) != 2:
        return f"{name} requires two input tensors."
    if name == "ADD_N" and len(inputs) != 2:
        return "ADD_N only supports 2 inputs."
    if name in _ONE_INPUT and (len(runtime) != 1 or len(present) != 1):
        return f"Expected 1 runtime input tensor(s), but node has {len(runtime)} runtime input(s)."
    if name in _TWO_INPUTS and (len(present) != 2 or not runtime):
        return "Op can only handle 1 or 2 operand(s)."
    if name in _ONE_RUNTIME_INPUT | _REDUCTIONS and len(runtime) != 1:
        return f"Expected 1 runtime input tensor(s), but node has {len(runtime)} runtime input(s)."
    if name in _REDUCTIONS:
        axes = present[1] if len(present) > 1 else None
        if axes is None or not axes["const"]:
            return f"{name} is only supported with constant axes."
        if axes["type"] != "INT32":
            return f"{name} supports int32 tensor for axes. But node has {axes['type']}"
    if name == "CAST" and (present[0]["type"], outputs[0]["type"]) not in _CAST_OK:
        return (f"Not supported Cast case. Input type: {present[0]['type']} and output type: "
                f"{outputs[0]['type']}")
    if name == "DEQUANTIZE" and present[0]["type"] == "INT16":
        return "Unsupported dequantization type."
    if name == "DEPTHWISE_CONV_2D":
        multiplier = getattr(options, "depthMultiplier", 1)
        if multiplier != 1 and present[0]["shape"][-1:] != [1]:
            return "depth_multiplier != 1 && input.c != 1"
    if name == "FULLY_CONNECTED":
        if getattr(options, "weightsFormat", 0) != 0:
            return f"Unsupported FullyConnected weights format: {options.weightsFormat}"
        if len(runtime) > 2:
            return "FullyConnected doesn't support more than 2 runtime inputs."
        if present[0]["const"]:
            return "FullyConnected doesn't support constant input."
        if getattr(options, "keepNumDims", False) and (len(present[0]["shape"])
                                                       != len(outputs[0]["shape"])):
            return ("Input and output dimensions different and FullyConnected doesn't support "
                    "keep_num_dims.")
    if name == "GATHER" and len(present) > 1:
        if len(present[1]["shape"]) != 1:
            return "Only support 1D indices"
        if present[1]["type"] != "INT32":
            return "Only accept INT32 indices"
    if name in ("PAD", "PADV2", "MIRROR_PAD"):
        if name == "MIRROR_PAD" and getattr(options, "mode", 0) != 0:
            return ("Only Reflective padding is supported for Mirror Pad operation. But node "
                    f"has {options.mode}")
        if len(runtime) != 1:
            return (f"Expected 1 runtime input tensor(s), but node has {len(runtime)} runtime "
                    "input(s).")
        shape = present[1]["shape"] if len(present) > 1 else []
        if len(shape) != 2 or shape[0] not in (3, 4) or shape[1] != 2:
            return f"Invalid paddings tensor shape: expected 4x2 or 3x2, got {shape}"
    if name in ("SLICE", "STRIDED_SLICE"):
        for mask in ("ellipsisMask", "newAxisMask", "shrinkAxisMask"):
            if getattr(options, mask, 0):
                return f"Slice does not support {mask}."
        if len(present[0]["shape"]) not in (3, 4):
            return f"{name} supports for 3 or 4 dimensional tensors only."
    if name == "SOFTMAX" and getattr(options, "beta", 1.0) != 1.0:
        return "Softmax.beta != 1 is not supported."
    if name in ("SPACE_TO_DEPTH", "DEPTH_TO_SPACE") and getattr(options, "blockSize", 2) <= 1:
        return f"{name} block_size must be > 1."
    if (name == "RESIZE_BILINEAR" and getattr(options, "alignCorners", False)
            and getattr(options, "halfPixelCenters", False)):
        return "If half_pixel_centers is True, align_corners must be False."
    return None


def rule_findings(flatbuffer: bytes) -> list[dict[str, Any]]:
    """Every op of a TFLite flatbuffer (its first subgraph, the one an app runs), with why the
    GPU delegate would not take it (`problem`, None where it would)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    names = {value: key for key, value in vars(schema.BuiltinOperator).items()
             if not key.startswith("_")}
    types = {value: key for key, value in vars(schema.TensorType).items()
             if not key.startswith("_")}
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    constant = {i for i, t in enumerate(graph.tensors) if t.buffer < len(model.buffers)
                and model.buffers[t.buffer].data is not None
                and len(model.buffers[t.buffer].data) > 0}
    ops = [(op, names.get(max(model.operatorCodes[op.opcodeIndex].builtinCode,
                               model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode),
                          "UNKNOWN")) for op in graph.operators or []]
    for op, name in ops:  # float16 weights: a DEQUANTIZE of a constant is a constant (the
        if name == "DEQUANTIZE" and int(op.inputs[0]) in constant:  # runtime keeps it so)
            constant.add(int(op.outputs[0]))

    def tensor(index: int) -> dict | None:
        if index < 0:
            return None
        t = graph.tensors[index]
        return {"type": types.get(t.type, str(t.type)),
                "shape": [int(d) for d in (t.shape if t.shape is not None else [])],
                "const": index in constant}

    found = []
    for index, (op, name) in enumerate(ops):
        code = model.operatorCodes[op.opcodeIndex]
        options = op.builtinOptions
        if name == "CUSTOM":
            options = code.customCode.decode() if isinstance(code.customCode, bytes) \
                else str(code.customCode)
        inputs = [tensor(int(i)) for i in (op.inputs if op.inputs is not None else [])]
        outputs = [tensor(int(i)) for i in (op.outputs if op.outputs is not None else [])]
        found.append({"index": index, "op": name if name != "CUSTOM" else options,
                      "problem": op_problem(name, options, inputs, outputs)})
    return found


def gpu_delegate(flatbuffer: bytes) -> dict[str, Any]:
    """The report's `gpu_delegate` entry: whether every op runs on the GPU delegate, and the
    ops that would fall back to the CPU (op, index, why, and which check said so)."""
    import tensorflow as tf

    verdict, warned = analyzer_findings(analyzer_text(flatbuffer))
    ops = rule_findings(flatbuffer)
    fallback = []
    for op in ops:
        reasons = [(text, source) for text, source in (
            (warned.get(op["index"]), "analyzer"), (op["problem"], "delegate rules"))
            if text]
        if reasons:
            fallback.append({"index": op["index"], "op": op["op"],
                             "why": "; ".join(dict.fromkeys(text for text, _ in reasons)),
                             "source": " and ".join(source for _, source in reasons)})
    return {"runs_wholly_on_gpu": not fallback, "ops": len(ops), "fallback_ops": fallback,
            "analyzer": verdict or "no verdict in the analyzer's output",
            "checked": (f"statically: TensorFlow Lite's model analyzer ({tf.__version__}) and "
                        "the GPU delegate's op rules (LiteRT gpu_compatibility.cc); not run on "
                        "a GPU")}


def summary(entry: dict[str, Any]) -> str:
    """The GPU delegate entry in a few words, for the `checked` line."""
    if entry["runs_wholly_on_gpu"]:
        return f"all {entry['ops']} ops on the GPU delegate (static check)"
    ops = entry["fallback_ops"]
    listed = ", ".join(f"{op['op']} ({op['why']})" for op in ops[:5])
    more = f" and {len(ops) - 5} more" if len(ops) > 5 else ""
    return (f"{len(ops)} of {entry['ops']} ops would fall back from the GPU delegate to the CPU "
            f"(static check): {listed}{more}")


def refusal(entry: dict[str, Any], kind: str) -> str:
    """Why a file meant for the GPU (`target="gpu"`) fails, and what to export instead."""
    ops = entry["fallback_ops"]
    listed = "; ".join(f"{op['op']} (op {op['index']}: {op['why']})" for op in ops[:5])
    more = f" and {len(ops) - 5} more" if len(ops) > 5 else ""
    head = (f"{len(ops)} of {entry['ops']} ops would fall back from the GPU delegate to the CPU "
            f"(target='gpu'): {listed}{more}")
    if kind == "float16":
        return head + "; replace these ops in the model (the GPU delegate has no kernel for them)"
    return (head + "; for the GPU delegate export quantize='float16' (float16 weights, the "
            "delegate's own precision), from a model without these ops")
