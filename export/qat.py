"""Quantization-aware training (QAT) for keras_effnet models, through TFMOT on tf_keras.

TFMOT rejects Keras 3 models, so `quantization_aware` rebuilds the model's config with
`tf_keras.layers` (the same `assemble` that built it), copies the weights by layer name and
inserts TFMOT's fake-quant ops. TFMOT has no QuantizeConfig for the two layers EfficientNet needs
besides convs: the input `Rescaling` (rebuilt as `RowRescaling`, as for every converted graph:
`keras_effnet.export.graph`) and the squeeze-excite `Multiply`; both get an output-only
8-bit quantizer here (their int8 kernels need only an output range). Swish and sigmoid are
separate `Activation` layers, which TFMOT's default registry quantizes after swish and leaves to
TFLite's fixed-range int8 LOGISTIC after sigmoid.

TFMOT is imported only inside these functions: importing it sets `TF_USE_LEGACY_KERAS=1` for
the whole process (docs/design.md, "Export").

Example:
    >>> qat = quantization_aware(model, "synthetic")  # compiled; fit it a few epochs
    >>> qat.fit(data.train, epochs=2)
    >>> to_tflite(qat, "model.tflite", quantize="int8", representative_data="synthetic")
"""

from __future__ import annotations

from typing import Any

from keras_effnet.errors import InvalidArgument, InvalidType

QAT_LEARNING_RATE = 1e-4  # fine-tuning an already trained float model: small steps only


def _tfmot() -> Any:
    import tensorflow_model_optimization as tfmot

    return tfmot.quantization.keras


def _output_quantize_config() -> Any:
    """A QuantizeConfig that fake-quantizes a layer's output only (Rescaling, SE Multiply)."""
    quantization = _tfmot()

    class OutputQuantizeConfig(quantization.QuantizeConfig):
        def get_weights_and_quantizers(self, layer: Any) -> list:
            return []

        def get_activations_and_quantizers(self, layer: Any) -> list:
            return []

        def set_quantize_weights(self, layer: Any, quantize_weights: list) -> None:
            pass

        def set_quantize_activations(self, layer: Any, quantize_activations: list) -> None:
            pass

        def get_output_quantizers(self, layer: Any) -> list:
            return [quantization.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

        def get_config(self) -> dict:
            return {}

    return OutputQuantizeConfig


def quantization_aware(model: Any, representative_data: Any = None, *,
                       calibration_steps: int = 128,
                       learning_rate: float | None = QAT_LEARNING_RATE,
                       label_smoothing: float = 0.1) -> Any:
    """Return a tf_keras QAT twin of a keras_effnet model, ready for `fit`.

    The twin computes the same function as `model` (up to fake quantization) and carries its
    `effnet_config` / `build_options`. `representative_data` (as for `to_tflite`: images, a
    tf.data.Dataset or a data spec) starts every activation range at the float model's observed
    range; without it the ranges start at TFMOT's [-6, 6] and need thousands of steps to settle
    (`_start_ranges`). With `learning_rate` set it is compiled with Adam,
    categorical cross-entropy and accuracy (labels one-hot, as `keras_effnet.data` yields);
    pass `learning_rate=None` to compile it yourself with a `tf_keras` optimizer.
    Convert it with `to_tflite(qat, path, quantize="int8", representative_data=…)`.
    """
    import dataclasses

    from keras_effnet.export.graph import (deployment_layers, float32_twin, input_size,
                                           row_rescaling)
    from keras_effnet.export.tflite import calibration_images
    from keras_effnet.assembly import assemble
    from keras_effnet.model import EfficientNet

    if not isinstance(model, EfficientNet):
        raise InvalidType(f"quantization_aware needs a keras_effnet EfficientNet (from build() or "
                          f"load_model()); got {type(model).__name__}")
    model = float32_twin(model)
    images = (None if representative_data is None else  # bad data fails before the slow part
              calibration_images(representative_data, input_size(model), calibration_steps))
    quantization = _tfmot()  # sets TF_USE_LEGACY_KERAS=1; import tf_keras after it
    import tf_keras

    # Synchronised BN would not match TFMOT's conv+BN patterns; the QAT twin is single-device BN.
    config = dataclasses.replace(model.effnet_config, bn_synchronized=False)
    assembled = assemble(config, model.build_options, deployment_layers(tf_keras.layers))
    twin = tf_keras.Model(assembled.inputs, assembled.outputs, name=model.name)
    for layer in twin.layers:
        if layer.weights:
            source = [w.shape for w in model.get_layer(layer.name).weights]
            if source != [w.shape for w in layer.weights]:
                raise ValueError(f"layer {layer.name!r}: weight shapes {source} do not match "
                                 f"the rebuilt {[w.shape for w in layer.weights]}")
            layer.set_weights(model.get_layer(layer.name).get_weights())

    output_config = _output_quantize_config()

    def annotate(layer: Any) -> Any:
        if isinstance(layer, (row_rescaling(tf_keras.layers), tf_keras.layers.Multiply)):
            return quantization.quantize_annotate_layer(layer, output_config())
        return quantization.quantize_annotate_layer(layer)

    annotated = tf_keras.models.clone_model(twin, clone_function=annotate)
    with quantization.quantize_scope({"OutputQuantizeConfig": output_config,
                                      "RowRescaling": row_rescaling(tf_keras.layers)}):
        qat = quantization.quantize_apply(annotated)
    qat.effnet_config, qat.build_options = config, model.build_options
    if images is not None:
        _start_ranges(qat, model, images)
    if learning_rate is not None:
        qat.compile(optimizer=tf_keras.optimizers.Adam(learning_rate),
                    loss=tf_keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                    metrics=["accuracy"])
    return qat


def _start_ranges(qat: Any, model: Any, images: Any, batch_size: int = 32) -> None:
    """Set each fake-quant output range of `qat` to the float `model`'s min/max on `images`.

    TFMOT starts every activation range at [-6, 6] and moves it by an exponential average of
    decay 0.999 per step: after a short fine-tune a ReLU6 output still spends half its int8
    levels on negatives and lite's [-1, 1] input a sixth of them. Starting from the observed
    ranges (what post-training calibration uses) lets a short fine-tune keep them.
    """
    import keras
    import numpy as np

    ranges: dict[str, list] = {}  # float layer name -> [(range variable, is_min)]
    for layer in qat.layers:
        source = layer.name.removeprefix("quant_")
        for variable in layer.weights:
            leaf = variable.name.split("/")[-1].split(":")[0]
            if leaf in ("output_min", "output_max", "post_activation_min",
                        "post_activation_max"):
                ranges.setdefault(source, []).append((variable, leaf.endswith("_min")))
    names = [name for name in ranges if name in {layer.name for layer in model.layers}]
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in names])
    low, high = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0.0)  # 0 is always in range
    for start in range(0, len(images), batch_size):
        outputs = probe(images[start:start + batch_size], training=False)
        for name, output in zip(names, outputs):
            output = keras.ops.convert_to_numpy(output)
            low[name] = min(low[name], float(np.min(output)))
            high[name] = max(high[name], float(np.max(output)))
    for name in names:
        for variable, is_min in ranges[name]:
            variable.assign(low[name] if is_min else high[name])


def fine_tune(model: Any, data: Any, *, epochs: int = 2, batch_size: int = 32,
              learning_rate: float = QAT_LEARNING_RATE, seed: int = 0,
              verbose: Any = "auto") -> Any:
    """`quantization_aware(model, data)` fitted for `epochs` on a data spec's training split
    (its activation ranges start from the float model's on those images).

    Uses the short recipe's crops; the model's input size is the training resolution. Returns
    the fitted QAT model (convert it with `to_tflite(…, quantize="int8")`).
    """
    from keras_effnet.console import fit_verbosity
    from keras_effnet.data import Augment, load
    from keras_effnet.export.graph import input_size
    from keras_effnet.train import Recipe

    if not isinstance(epochs, int) or epochs < 1:
        raise InvalidArgument(f"epochs={epochs!r}; accepted: an integer >= 1")
    recipe = Recipe.short()
    dataset = load(data, resolution=input_size(model)[0], batch_size=batch_size, seed=seed,
                   num_classes=model.output_shape[-1],
                   augment=Augment(recipe.crop_area_min, recipe.randaugment))
    qat = quantization_aware(model, data, learning_rate=learning_rate,
                             label_smoothing=recipe.label_smoothing)
    qat.fit(dataset.train, epochs=epochs, verbose=fit_verbosity(verbose))
    return qat
