"""Bias correction for full-integer PTQ (Nagel et al., 2019, "Data-Free Quantization Through
Weight Equalization and Bias Correction").

The int8 converter rounds each output channel's weights to 255 levels (per-channel symmetric,
scale max|w|/127), after folding a following batch norm into them. The rounding error ε = W_q − W
is fixed, so every output channel is shifted by ε·E[x] on average: a systematic error that the
next layers see as a wrong bias. In the real ImageNet Lite0 the stem's edge detectors (folded
weights ±17 beside weights below 1) carry shifts of up to 4 output steps (BUILD_NOTES.md,
"Real ImageNet Lite0 weights through int8 PTQ").

`bias_corrected(model, images)` measures E[x], the mean input of every Conv2D, DepthwiseConv2D
and Dense layer over the calibration images in the float model, simulates the converter's
weight rounding, and subtracts ε·E[x] from the bias the converter will fold (the batch norm's
beta, or the layer's own bias). The weights stay as they are, so the converter rounds them as
simulated; `tests/test_int8_structure.py` checks the simulation against the converter's own
int8 weights: on the real ImageNet Lite0, 5 of its 4.6 M live weights round one step apart
(float32 against float64 at a half step). Dead channels (weights ~0) get a wider scale from the
converter, which keeps their bias within int32 (measured: −2^30 in the stem's four); both round
them to ~0, so their shift is ~0 either way. Models nested in the model (a backbone inside a
`Sequential`) are corrected on the inputs they receive there. Layers that have no bias to shift (no batch norm
after them, `use_bias=False`) are left as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def int8_weights(kernel: np.ndarray) -> np.ndarray:
    """`kernel` (output channels on the last axis) rounded as the TFLite converter rounds it:
    per output channel, symmetric, 127 levels each side of zero."""
    axes = tuple(range(kernel.ndim - 1))
    scale = np.abs(kernel).max(axis=axes, keepdims=True) / 127.0
    scale = np.where(scale > 0, scale, 1.0)
    return np.round(kernel / scale) * scale


def folded_kernel(layer: Any, norm: Any) -> np.ndarray:
    """`layer`'s kernel as the converter quantizes it: a following batch norm's scale
    γ/√(σ² + ε) folded in, output channels last (a depthwise kernel as (kh, kw, C·multiplier))."""
    import keras

    kernel = np.asarray(layer.kernel, "float64")
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kernel = kernel.reshape(*kernel.shape[:2], -1)
    if norm is None:
        return kernel
    gamma = np.asarray(norm.gamma, "float64") if norm.scale else 1.0
    return kernel * (gamma / np.sqrt(np.asarray(norm.moving_variance, "float64") + norm.epsilon))


def _shift(layer: Any, kernel: np.ndarray, mean_input: np.ndarray) -> np.ndarray:
    """ε·E[x] for each output channel of `layer` (folded `kernel`; E[x] of its input channels)."""
    import keras

    error = int8_weights(kernel) - kernel
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return error.sum(axis=(0, 1)) * np.repeat(mean_input, layer.depth_multiplier)
    if isinstance(layer, keras.layers.Dense):
        return mean_input @ error
    return np.einsum("hwio,i->o", error, mean_input)


def correctable(model: Any) -> list[tuple[Any, Any]]:
    """(layer, its batch norm or None) for each layer of `model` whose rounding bias can be
    corrected: Conv2D (ungrouped), DepthwiseConv2D and Dense layers followed by exactly one
    batch norm with a beta (which the converter folds in), or else having a bias."""
    import keras

    from keras_effnet.keras_private import consumers

    found = []
    for layer in model.layers:
        if not (isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                                   keras.layers.Dense)) and layer.built):
            continue
        if isinstance(layer, keras.layers.Conv2D) and (
                layer.groups != 1 or len(layer.kernel.shape) != 4):
            continue
        after = consumers(layer, model)
        norm = after[0] if (len(after) == 1 and isinstance(
            after[0], keras.layers.BatchNormalization) and after[0].center) else None
        if norm is not None or layer.use_bias:
            found.append((layer, norm))
    return found


def bias_corrected(model: Any, images: np.ndarray, batch_size: int = 16
                   ) -> tuple[Any, dict, dict[str, np.ndarray]]:
    """A copy of `model` whose biases cancel the int8 converter's mean weight-rounding error on
    `images` (the calibration images), a summary, and the corrected variables' new values by
    path (what a traced graph's SavedModel takes instead of a trace of the copy, see
    `graph.Traced.with_values`); `model` itself is not changed."""
    import keras

    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    shifted = _correct(twin, np.asarray(images, "float32"), batch_size)
    summary = {"layers": len(shifted), "max_shift": round(max(shifted.values(), default=0.0), 6)}
    values = {v.path: np.asarray(v) for v in twin.weights if id(v) in shifted}
    return twin, summary, values


def _correct(model: Any, inputs: np.ndarray, batch_size: int) -> dict[int, float]:
    """Correct `model`'s layers in place on `inputs`, then those of each model nested in it
    on the inputs it receives there; {id of each corrected variable: its largest |shift|}."""
    import keras

    from keras_effnet.keras_private import caller_input

    layers = correctable(model)  # before the probe below adds consumers to the graph
    nested = [(layer, caller_input(layer)) for layer in model.layers
              if isinstance(layer, keras.Model)]
    nested = [(sub, x) for sub, x in nested if x is not None]  # called once, on one tensor

    def spatial_mean(layer: Any) -> Any:
        x = layer.input
        return keras.ops.mean(x, axis=tuple(range(1, len(x.shape) - 1))) if len(x.shape) > 2 else x

    # one pass: each layer's mean input, and each nested model's input itself
    outputs = [spatial_mean(layer) for layer, _ in layers] + [x for _, x in nested]
    if not outputs:
        return {}
    values = _run(keras.Model(model.inputs, outputs), inputs, batch_size)
    shifted = {}
    for (layer, norm), mean in zip(layers, values):
        shift = _shift(layer, folded_kernel(layer, norm), np.asarray(mean, "float64").mean(0))
        target = norm.beta if norm is not None else layer.bias
        target.assign((np.asarray(target, "float64") - shift).astype(target.dtype))
        shifted[id(target)] = float(np.abs(shift).max())
    for (sub, _), sub_inputs in zip(nested, values[len(layers):]):
        shifted.update(_correct(sub, sub_inputs, batch_size))
    return shifted


def _run(probe: Any, inputs: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """`probe`'s outputs on `inputs`, batch by batch through one traced function whose batch
    size is free: `predict` traces again for a last, smaller batch (a second b0 trace ~5 s)."""
    import tensorflow as tf

    step = tf.function(lambda x: probe(x, training=False), input_signature=[
        tf.TensorSpec((None, *inputs.shape[1:]), tf.float32)])
    chunks = []
    for start in range(0, len(inputs), batch_size):
        out = step(inputs[start:start + batch_size])
        chunks.append([np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])])
    return [np.concatenate(parts) for parts in zip(*chunks)]
