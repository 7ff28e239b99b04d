"""keras_effnet.export: verified TFLite, ONNX and SavedModel artifacts from a Keras model.

Installed as `keras_effnet.export` (see setup.py's package_dir). It imports `keras_effnet`;
`keras_effnet` never imports it. Every call converts, runs the artifact in its real runtime
against the Keras model, and only then writes the artifact and its JSON report
(`<artifact>.json`) atomically: a failed conversion or verification leaves nothing under the
final name.

Example:
    >>> from keras_effnet.export import to_tflite
    >>> report = to_tflite(model, "model.tflite", quantize="int8", representative_data="synthetic")
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from keras_effnet.assembly import PREPROCESSING_FORMULAS
from keras_effnet.errors import InvalidArgument, InvalidType
from keras_effnet.files import atomic_dir, atomic_path, check_writable_dir, write_json
from keras_effnet.runs import choose_labels
from keras_effnet.export.contract import (INPUT_CONTRACT, ONNX_LABELS_KEY, model_output_kind,
                                          onnx_props)
from keras_effnet.export.graph import Traced, input_size, is_quantization_aware, traced, using
from keras_effnet.export.layer_report import (float_layers_cost, float_nodes,
                                              layer_statistics, plain_int8, worst, worst_text,
                                              write_csv)
from keras_effnet.export.onnx_conversion import onnx_from_graph_def
from keras_effnet.export.qat import fine_tune, quantization_aware
from keras_effnet.export.tflite import (IO_DTYPES, QUANTIZE_MODES, calibration_images,
                                        configured, convert, finished)
from keras_effnet.export.tflite_metadata import (TFLiteMetadata, check_labels, read_labels,
                                                 with_metadata)
from keras_effnet.export.verify import (TARGETS, THRESHOLDS, VerificationError, check_target,
                                        checked, compare, failures, thresholds_for, verify)



def _verification_images(model: Any, data: Any, count: int, labels: list[str] | None
                         ) -> tuple[np.ndarray, Any, str | None]:
    """Images to verify on, their labels as indices of the model's outputs (None when there
    are none, or when the data's classes do not map onto the model's class names), and why
    there are no labels (None when there are)."""
    shape = input_size(model)
    if data is None:
        rng = np.random.default_rng(0)
        return (rng.uniform(0, 255, (count, *shape)).astype("float32"), None,
                "the verification images are random pixels, without labels")
    if isinstance(data, str):
        from keras_effnet.data import class_names, examples

        images, targets = examples(data, shape[0], count, split="validation")
        targets, why = model_targets(targets, class_names(data), labels)
        return images, targets, why
    if isinstance(data, tuple) and len(data) == 2:
        return calibration_images(data[0], shape, count), np.asarray(data[1])[:count], None
    return (calibration_images(data, shape, count), None,
            "the verification images have no labels")


def _same_name(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def model_targets(targets: np.ndarray, data_names: list[str], model_names: list[str] | None
                  ) -> tuple[np.ndarray | None, str | None]:
    """A data set's labels as indices of the model's outputs, matched by class name (case,
    "_" and "-" aside; the data's classes may be a subset of the model's); (None, why) when a
    class of the images cannot be matched."""
    if model_names is None:
        return None, ("the model has no class names to match the data's classes "
                      f"({', '.join(data_names[:3])}{', …' if len(data_names) > 3 else ''}) "
                      "onto (give labels)")
    index: dict[str, list[int]] = {}
    for i, name in enumerate(model_names):
        index.setdefault(_same_name(name), []).append(i)
    used = sorted({int(t) for t in targets})
    unmatched = [data_names[t] for t in used
                 if len(index.get(_same_name(data_names[t]), [])) != 1]
    if unmatched:
        return None, (f"the verification data's class(es) {', '.join(map(repr, unmatched[:3]))}"
                      f"{' …' if len(unmatched) > 3 else ''} match none (or several) of the "
                      f"model's {len(model_names)} class names")
    mapping = {t: index[_same_name(data_names[t])][0] for t in used}
    return np.array([mapping[int(t)] for t in targets]), None


def describe_data(data: Any, split: str) -> str:
    """How a report names the images it used: a data spec and its split, or what was given."""
    if data is None:
        return "seeded random pixels (no labels)"
    if isinstance(data, str):
        return f"{data} ({split} split)"
    if isinstance(data, tuple) and len(data) == 2:
        return "images and labels given as arrays"
    return f"images given as {type(data).__name__}"


def metadata(model: Any) -> dict[str, Any]:
    """What a deployer needs beside the artifact: input, preprocessing, labels, source config."""
    info: dict[str, Any] = {"model": model.name, "input_shape": list(input_size(model)),
                            "input_range": [0, 255], "input_layout": "NHWC RGB"}
    config = getattr(model, "effnet_config", None)
    if config is not None:
        info["preprocessing"] = ("inside the model: " + PREPROCESSING_FORMULAS[
            config.preprocessing] if model.build_options.include_preprocessing
            else "none (feed normalised input)")
        info["config"] = config.to_dict()
    return info


def _finish(artifact_bytes: bytes, path: str, model: Any, kind: str, verify_data: Any,
            verify_count: int, labels: list[str] | None, num_threads: int,
            thresholds: dict[str, float | None] | None, extra: dict[str, Any],
            target: str = "cpu", baseline: bytes | None = None) -> dict[str, Any]:
    """Verify `artifact_bytes` and write it as `path` with its report, or raise
    VerificationError leaving only `<path>.failed.json`. `baseline`: the plain int8 file that
    `float_layers` is measured against (on the same images)."""
    images, targets, no_accuracy = _verification_images(model, verify_data, verify_count,
                                                        labels)
    extra = {**extra, "verify_data": describe_data(verify_data, "validation")}
    if no_accuracy:
        extra["accuracy"] = f"not computed: {no_accuracy}"
    plain = (plain_int8(baseline, path, model, images, targets, num_threads, thresholds)
             if baseline is not None else None)
    failed_report = path + ".failed.json"

    def completed(report: dict[str, Any]) -> dict[str, Any]:  # passed or failed
        report = {**report, "artifact": os.path.basename(path), **extra,
                  "metadata": metadata(model), "labels": labels}
        if plain:
            report["float_layers"] = float_layers_cost(report, plain)
        return {**report, "checked": checked(report)}

    with atomic_path(path) as staged:  # renamed into place only if verification passes
        with open(staged, "wb") as f:
            f.write(artifact_bytes)
        try:
            report = verify(staged, model, images, targets, kind=kind, num_threads=num_threads,
                            thresholds=thresholds, target=target)
        except VerificationError as failed:  # nothing under the final name; the report kept
            report = completed(failed.report)
            write_json(report, failed_report)
            reason = str(failed).split("verification failed: ", 1)[-1]
            raise VerificationError(f"{path}: verification failed: {reason} (not written; "
                                    f"report in {failed_report})", report) from None
        report = completed(report)
    write_json(report, path + ".json")
    if os.path.exists(failed_report):  # an earlier attempt's
        os.remove(failed_report)
    return report


def _reference(model: Any) -> Any:
    """The Keras model an artifact is verified against (a traced model's float32 model)."""
    return model.model if isinstance(model, Traced) else model


def model_labels(model: Any, labels: Any) -> list[str] | None:
    """The class names an artifact carries: `labels` when given, else the model's own
    (`class_names`, set by training and by ImageNet weights); checked against its outputs."""
    labels = choose_labels(given=labels, own=getattr(model, "class_names", None)).names
    if labels is None:
        return None
    labels = check_labels(labels)
    outputs = [tuple(output.shape) for output in model.outputs]
    if len(outputs) != 1 or outputs[0][-1] != len(labels):
        raise InvalidArgument(f"{len(labels)} labels for a model whose outputs are {outputs}; "
                              "labels need one output with one score per label")
    return labels


def default_metadata(model: Any, quantize: str, io_dtype: str, classes: int) -> TFLiteMetadata:
    """The name and description a TFLite file gets when none are given."""
    from keras_effnet import __version__

    height, width, _ = input_size(model)
    mode = {"none": "float32", "float16": "float16 weights", "dynamic": "int8 weights",
            "int8": "int8 weights and activations"}[quantize]
    return TFLiteMetadata(
        name=model.name,
        description=f"{model.name} image classifier, {classes} classes, {width}x{height} RGB "
                    f"input ({mode}, {io_dtype} input/output); exported by keras_effnet "
                    f"{__version__}. Feed RGB pixels 0..255: the model normalises inside; "
                    f"{INPUT_CONTRACT}.")


def to_tflite(model: Any, path: str | os.PathLike, quantize: str = "none", *,
              representative_data: Any = None, calibration_steps: int = 100,
              io_dtype: str = "float32", verify_data: Any = None, verify_count: int = 64,
              labels: list[str] | None = None, num_threads: int = 2,
              thresholds: dict[str, float | None] | None = None,
              bias_correction: bool = True,
              metadata: TFLiteMetadata | bool = True, target: str | None = None,
              layer_report: bool = False, float_layers: int = 0) -> dict[str, Any]:
    """Convert to TFLite (none | float16 | dynamic | int8), verify, write; return the report.

    `model`: a Keras model, or `traced(model)` to export several artifacts from one trace.
    `representative_data` (int8): array of images, tf.data.Dataset, or a data spec.
    `verify_data`: images, (images, labels), or a data spec (its labels give accuracies);
    default: the representative data, else seeded random pixels.
    `thresholds`: overrides of the kind's `THRESHOLDS` (None turns a gate off).
    `bias_correction` (int8): cancel the weight rounding's mean error first
    (`export/bias_correction.py`); the report records what it shifted.
    `metadata`: the image-classifier metadata on-device runtimes need (MediaPipe Tasks,
    LiteRT's Task Library), with `labels` (default: the model's `class_names`) as the labels
    file; a `TFLiteMetadata` sets its name, description, version, author and license;
    False writes a bare file. The interpreter computes the same bytes either way.
    `target`: "gpu" fails a file whose ops would not all run on the GPU delegate (default
    None / "cpu": the report says which would fall back; export/gpu_compat.py).
    `layer_report` (int8): write `<path>.layers.csv`, TensorFlow Lite's quantization
    debugger statistics per layer on the calibration images, worst first
    (export/layer_report.py). `float_layers=N` (int8): keep the N worst of those layers (and
    the ops reading their outputs) in float; the report says what that cost in size and
    latency against the plain int8 file. A failed int8 verification names its worst layers.
    """
    path = os.fspath(path)
    if not path.endswith(".tflite"):
        raise InvalidArgument(f"TFLite path {path!r} must end in .tflite")
    if not isinstance(metadata, (bool, TFLiteMetadata)):
        raise InvalidType(f"metadata={metadata!r}; accepted: True, False or a TFLiteMetadata")
    check_writable_dir(path)
    limits = thresholds_for(quantize, thresholds)  # a bad threshold fails before converting
    target = check_target(target)
    _check_layer_options(model, quantize, layer_report, float_layers)
    reference = _reference(model)
    labels = model_labels(reference, labels)  # before the slow conversion
    conversion_args = (model, quantize, representative_data, calibration_steps, io_dtype,
                       bias_correction)
    statistics, baseline = None, None
    with configured(*conversion_args) as conversion:
        flatbuffer, done = finished(conversion.converter.convert(), io_dtype), conversion.info
        if layer_report or float_layers:  # the debugger calibrates once more, as convert did
            statistics = layer_statistics(conversion)
            if float_layers:
                nodes = float_nodes(statistics, float_layers)
                baseline, flatbuffer = flatbuffer, statistics.model(nodes, io_dtype)
    written: dict[str, Any] = {"written": False}
    if metadata is not False:
        flatbuffer, written = _with_metadata(flatbuffer, reference, quantize, io_dtype,
                                             metadata, labels)
        baseline = baseline and _with_metadata(baseline, reference, quantize, io_dtype,
                                               metadata, labels)[0]
    extra = {"format": "tflite", "quantize": quantize, "io_dtype": io_dtype, **done,
             "tflite_metadata": written}
    if quantize == "int8":
        extra["calibration_data"] = describe_data(representative_data, "train")
    if statistics:
        extra.update(_layer_entries(statistics, path, layer_report, float_layers))
    try:
        return _finish(flatbuffer, path, reference, quantize,
                       verify_data if verify_data is not None else representative_data,
                       verify_count, labels, num_threads, limits, extra, target, baseline)
    except VerificationError as failed:
        if quantize != "int8" or is_quantization_aware(model) or not _lost_accuracy(
                failed.report, limits):
            raise
        if statistics is None:  # name the layers that lost it: one more calibration
            try:
                with configured(*conversion_args) as conversion:
                    statistics = layer_statistics(conversion)
            except Exception:  # noqa: BLE001 - the layers only explain; the failure stands
                raise failed from None
            failed.report["worst_layers"] = worst(statistics.rows)
            write_json(failed.report, path + ".failed.json")
        raise VerificationError(f"{failed}; {worst_text(statistics.rows[:5], float_layers)}",
                                failed.report) from None


def _check_layer_options(model: Any, quantize: str, layer_report: Any,
                         float_layers: Any) -> None:
    if not isinstance(layer_report, bool):
        raise InvalidArgument(f"layer_report={layer_report!r}; accepted: True or False")
    if isinstance(float_layers, bool) or not isinstance(float_layers, int) or float_layers < 0:
        raise InvalidArgument(f"float_layers={float_layers!r}; accepted: a whole number >= 0")
    if (layer_report or float_layers) and quantize != "int8":
        raise InvalidArgument(f"{'layer_report' if layer_report else 'float_layers'} applies "
                              f"to quantize='int8' (got {quantize!r})")
    if (layer_report or float_layers) and is_quantization_aware(model):
        raise InvalidArgument("layer_report and float_layers apply to post-training int8; a "
                              "quantization-aware model's ranges come from its training")


def _layer_entries(statistics: Any, path: str, layer_report: bool,
                   float_layers: int) -> dict[str, Any]:
    """The report's entries of the layer report: the worst layers, the CSV's name (written
    now: it describes the conversion whether or not the file passes), the float layers."""
    entries: dict[str, Any] = {"worst_layers": worst(statistics.rows)}
    if layer_report:
        write_csv(statistics.rows, path + ".layers.csv")
        entries["layer_report"] = os.path.basename(path) + ".layers.csv"
    if float_layers:
        worst_rows = statistics.rows[:float_layers]
        entries["float_layers"] = {"count": float_layers,
                                   "layers": [row["layer"] for row in worst_rows],
                                   "kept_in_float": float_nodes(statistics, float_layers)}
    return entries


def _lost_accuracy(report: dict[str, Any], limits: dict[str, float | None]) -> bool:
    """Whether a failed int8 verification failed on what quantization loses (agreement, SQNR,
    accuracy), not on too few decisive images or the GPU delegate alone."""
    return any(not reason.startswith("too few decisive images")
               for reason in failures(report, limits))


def _with_metadata(flatbuffer: bytes, reference: Any, quantize: str, io_dtype: str,
                   metadata: TFLiteMetadata | bool, labels: list[str] | None
                   ) -> tuple[bytes, dict[str, Any]]:
    """The flatbuffer with its image-classifier metadata, and what was written."""
    classes = int(reference.outputs[0].shape[-1])
    info = default_metadata(reference, quantize, io_dtype, classes)
    if isinstance(metadata, TFLiteMetadata):
        info = TFLiteMetadata(**{key: getattr(metadata, key) or getattr(info, key)
                                 for key in ("name", "description", "version", "author",
                                             "license")})
    flatbuffer, written = with_metadata(flatbuffer, info, labels,
                                        output=model_output_kind(reference),
                                        input_note=INPUT_CONTRACT)
    if labels is None:
        written["note"] = ("no labels given and the model has no class_names: the file "
                           "carries none, so apps show class indices")
    return flatbuffer, written


def onnx_model(model: Any, opset: int = 17) -> Any:
    """The ONNX ModelProto of `model` (or of a traced model): its frozen serving function
    through tf2onnx (`onnx_conversion`), one input `image` (float32 pixels, any batch)."""
    if not isinstance(opset, int) or not 13 <= opset <= 18:
        raise InvalidArgument(f"opset={opset!r}; accepted: 13..18 (tf2onnx 1.17)")
    with using(model) as graph:
        graph_def, image, outputs = graph.frozen_graph()
        proto = onnx_from_graph_def(graph_def, image, [t for t, _ in outputs], opset,
                                    graph.model.name)
    if len(proto.graph.input) != 1:
        raise RuntimeError(f"tf2onnx produced {len(proto.graph.input)} graph inputs; expected 1")
    renames = {image: "image", **dict(outputs)}  # tensor names -> the model's names
    for value in (*proto.graph.input, *proto.graph.output):
        value.name = renames.get(value.name, value.name)
    for node in proto.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    return proto


def to_onnx(model: Any, path: str | os.PathLike, opset: int = 17, *, verify_data: Any = None,
            verify_count: int = 64, labels: list[str] | None = None, num_threads: int = 2,
            thresholds: dict[str, float | None] | None = None) -> dict[str, Any]:
    """Convert with tf2onnx (variables frozen, one input, dynamic batch), verify, write.

    `model`: a Keras model, or `traced(model)` to export several artifacts from one trace.
    `labels` (default: the model's `class_names`) go into the file's metadata_props
    ("labels", a JSON list), with the output kind ("output": probabilities or logits),
    where `effnet predict` and other clients read them.
    """
    path = os.fspath(path)
    if not path.endswith(".onnx"):
        raise InvalidArgument(f"ONNX path {path!r} must end in .onnx")
    check_writable_dir(path)
    limits = thresholds_for("none", thresholds)
    reference = _reference(model)
    labels = model_labels(reference, labels)
    proto = onnx_model(model, opset)
    for key, value in onnx_props(model_output_kind(reference), labels).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return _finish(proto.SerializeToString(), path, reference, "none", verify_data,
                   verify_count, labels, num_threads, limits, {"format": "onnx", "opset": opset})


def to_saved_model(model: Any, path: str | os.PathLike) -> str:
    """Export a SavedModel with a `serving_default` signature (float32 pixels → outputs)."""
    import shutil

    path = os.fspath(path)
    with atomic_dir(path) as staged, using(model) as graph:
        shutil.copytree(graph.saved_model, staged, dirs_exist_ok=True)
    return path


__all__ = ["IO_DTYPES", "ONNX_LABELS_KEY", "QUANTIZE_MODES", "TARGETS", "THRESHOLDS",
           "TFLiteMetadata", "Traced", "VerificationError", "compare", "describe_data", "fine_tune",
           "is_quantization_aware", "metadata", "onnx_model", "quantization_aware",
           "read_labels", "thresholds_for", "to_onnx", "to_saved_model", "to_tflite", "traced",
           "verify"]
