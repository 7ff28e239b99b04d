"""`effnet export` and `effnet predict`: a .keras model converted to TFLite / ONNX /
SavedModel, verified before it is written (with the data it takes from the run that trained
it), and images classified with a model as it ships."""

from __future__ import annotations

import os
import sys
from json import dumps
from typing import Literal

from absl.app import UsageError

from keras_effnet.cli.options import Flag, Quantize, changed, check_data, flag_syntax
from keras_effnet.cli.reports import layer_lines, metadata_line, report_table, stage
from keras_effnet.runs import RunFolder, choose_labels, run_summary

EXPORT_NAMES = {"tflite": "_{quantize}.tflite", "onnx": ".onnx", "saved_model": "_saved_model"}
# `effnet export`'s data flags (in the order one stands in for another the user did not give):
# what each is for, and the split of its spec that the export library uses.
EXPORT_DATA = {"calibration": ("calibration", "train"), "data": ("QAT fine-tuning", "train"),
               "verify_data": ("verification", "validation")}


def _threshold_defaults(name: str) -> str:
    from keras_effnet.export.verify import THRESHOLDS

    return " (default by --quantize: " + ", ".join(
        f"{kind} {'off' if limits[name] is None else limits[name]}"
        for kind, limits in THRESHOLDS.items()) + ")"


_DATA, _METADATA = "data spec whose {} (default: ", "TFLite metadata: the model's "
EXPORT_FLAGS = {
    "model": "the .keras model to export (required)", "format": "export format",
    "quantize": "TFLite mode", "io_dtype": "int8 TFLite input/output", "opset": "ONNX opset",
    "bias_correction": "int8: shift each layer's bias to cancel the mean error of its rounded "
                       "weights on the calibration images (--nobias_correction: plain PTQ)",
    "calibration": "int8: " + _DATA.format("train split calibrates") + "the data of the `effnet "
                   "train` run that wrote --model, recorded in its summary.json; else --data or "
                   "--verify_data)",
    "verify_data": _DATA.format("validation split verifies the artifact") + "the run's data; "
                   "else --calibration or --data)",
    "verify_count": "verification: the number of images of the verification split the artifact "
                    "is verified on",
    "qat_epochs": "with --quantize=int8: first fine-tune this many epochs quantization-aware "
                  "(the remedy when PTQ loses accuracy)",
    "target": "TFLite: the hardware the file is for; every TFLite report says which ops would "
              "fall back from the GPU delegate to the CPU (a static check), gpu makes such a "
              "fallback an error (export --quantize=float16 for GPU delegates)",
    "layer_report": "with --quantize=int8: write <artifact>.layers.csv, TensorFlow Lite's "
                    "quantization debugger statistics per layer on the calibration images (the "
                    "int8 layer against the float one: channel SQNR, SQNR, mean squared error, "
                    "scale, zero point), worst first",
    "float_layers": "with --quantize=int8: keep the N worst layers of the layer report (and "
                    "the ops reading their outputs) in float, verified; the report gives the "
                    "size and latency that costs against plain int8",
    "labels": "a labels file (one class name per line) for the artifact (default: the model's "
              "class names, else the run's summary.json)",
    "metadata": "TFLite: write the image-classifier metadata on-device runtimes read (MediaPipe "
                "Tasks, LiteRT Task Library): input normalisation, labels file, name, "
                "description (--nometadata: a bare file)",
    "author": _METADATA + "author", "license": _METADATA + "license",
    "description": _METADATA + "description (default: its name, classes, input size and "
                               "quantization)",
    "model_version": _METADATA + "version (default 1)",
    "data": "with --qat_epochs: " + _DATA.format("train split fine-tunes") + "the run's data; "
            "else --calibration or --verify_data)",
    "batch_size": "with --qat_epochs: fine-tuning batch size",
    "seed": "with --qat_epochs: fine-tuning seed",
    "out": "a file, or a folder (an existing one, or a path ending in /) to write "
           "<model>_<quantize>.tflite / <model>.onnx / <model>_saved_model into (default: "
           "beside --model)",
    # the verification thresholds (default: the artifact kind's, keras_effnet.export.THRESHOLDS)
    **{name: Flag("verification: " + text, group="thresholds", note=_threshold_defaults)
       for name, text in {
           "min_agreement": "least top-1 agreement with Keras over all images, near-ties "
                            "included",
           "min_decisive_agreement": "least top-1 agreement over the images whose float "
                                     "top-1/top-2 margin exceeds --near_tie_margin",
           "min_decisive_images": "least number of decisive images (float top-1/top-2 margin "
                                  "above --near_tie_margin) for the verification to judge; 0 "
                                  "accepts fewer",
           "near_tie_margin": "float top-1/top-2 probability margin at or below which an image "
                              "is a near-tie (counted, not gated)",
           "min_sqnr_db": "least signal-to-quantization-noise ratio of the outputs (dB)",
           "max_accuracy_drop": "largest accuracy loss against Keras on labelled data",
           "max_abs_diff": "largest |artifact - Keras| output difference (float artifacts; inf: "
                           "not gated)"}.items()}}


def export_path(model: str, out: str | None, fmt: str, quantize: str) -> str:
    """Where `effnet export` writes: `out` when it names a file; else the default name
    (`<model>_<quantize>.tflite`, `<model>.onnx`, `<model>_saved_model`) inside the folder
    `out` names (an existing folder that is not a SavedModel, or a path ending in /), or
    beside the model."""
    name = (os.path.splitext(os.path.basename(model))[0]
            + EXPORT_NAMES[fmt].format(quantize=quantize))
    if out is None:
        return os.path.join(os.path.dirname(model), name)
    saved_model = os.path.isfile(os.path.join(out, "saved_model.pb"))
    if out.endswith(("/", os.sep)) or (os.path.isdir(out) and not saved_model):
        return os.path.join(out, name)
    return out


def export_data(model: str, needed: list[str], given: dict[str, str | None]
                ) -> dict[str, tuple[str, str]]:
    """{flag: (data spec, where it came from)} for the data flags in `needed`: the flag itself
    (`given`, None where not given); else the data of the `effnet train` run that wrote
    `model`; else another data flag given (EXPORT_DATA's order). Data is never invented: with
    none of these, a usage error names the flag."""
    others = [name for name in EXPORT_DATA if given.get(name) is not None]
    run = run_summary(model)  # summary.json read through keras_effnet.runs
    chosen = {}
    for name in needed:
        if given.get(name) is not None:
            chosen[name] = (given[name], f"--{name}")
        elif run:
            chosen[name] = (run[0].data.spec, f"the run's data, recorded in {run[1]}")
        elif others:
            chosen[name] = (given[others[0]], f"--{others[0]}")
        else:
            raise UsageError(
                f"pass --{name}=SPEC (folder:PATH, tfrecord:GLOB, or synthetic for a demo): "
                f"{model} has no summary.json of an `effnet train` run beside it to take the "
                "data from")
    return chosen


def export(*, model: str | None = None,
           format: Literal["tflite", "onnx", "saved_model"] = "tflite",
           quantize: Quantize = "none", io_dtype: Literal["float32", "uint8", "int8"] = "float32",
           opset: int = 17, bias_correction: bool = True,
           calibration: str | None = None, verify_data: str | None = None,
           verify_count: int = 64, qat_epochs: int = 0,
           target: Literal["cpu", "gpu"] = "cpu", layer_report: bool = False,
           float_layers: int = 0, labels: str | None = None,
           metadata: bool = True, author: str | None = None, license: str | None = None,
           description: str | None = None, model_version: str | None = None,
           data: str | None = None, batch_size: int = 64, seed: int = 0,
           out: str | None = None, thresholds: dict[str, float] | None = None) -> dict | None:
    """Convert a .keras model to TFLite / ONNX / SavedModel, verified before it is written.

    The artifact runs in its runtime beside the Keras model; only if it passes are it and its
    .json report written (else the report is kept as <artifact>.failed.json).

    Calibration (train split), verification (validation split) and QAT fine-tuning (train
    split) use the data of the `effnet train` run that wrote --model (its summary.json)
    unless --calibration / --verify_data / --data say otherwise; any other model needs one
    of them (synthetic data only when asked for: --calibration=synthetic). Verification
    gates on the top-1 agreement of the decisive images (float top-1/top-2 margin above
    --near_tie_margin), the SQNR, max |Δ| and the accuracy drop; near-ties are counted.
    Every TFLite report says whether each op runs on the GPU delegate (--target=gpu: an op
    that would fall back fails); --layer_report and --float_layers say which int8 layers
    lose accuracy and keep the worst in float."""
    if not model:
        raise UsageError("--model=PATH.keras is required")
    path = export_path(model, out, format, quantize)
    tflite, saved_model = format == "tflite", format == "saved_model"
    int8 = tflite and quantize == "int8"
    if qat_epochs and not int8:
        raise UsageError("--qat_epochs needs --format=tflite --quantize=int8")
    if qat_epochs and (layer_report or float_layers):
        raise UsageError("--layer_report and --float_layers apply to post-training int8, not "
                         "after --qat_epochs")
    if float_layers < 0:
        raise UsageError(f"--float_layers={float_layers}; accepted: a whole number >= 0")
    # settings of one format or mode given to another would be silently ignored: refuse them
    ignored = changed(export, **{name: value for name, value, applies in (
        ("quantize", quantize, tflite), ("io_dtype", io_dtype, int8),
        ("bias_correction", bias_correction, int8), ("opset", opset, format == "onnx"),
        ("labels", labels, not saved_model), ("verify_count", verify_count, not saved_model),
        ("author", author, tflite and metadata), ("license", license, tflite and metadata),
        ("description", description, tflite and metadata),
        ("model_version", model_version, tflite and metadata), ("metadata", metadata, tflite),
        ("target", target, tflite), ("layer_report", layer_report, int8),
        ("float_layers", float_layers, int8))
        if not applies})
    if ignored:
        raise UsageError(f"{ignored[0]} does not apply to --format={format}"
                         + (f" --quantize={quantize}" if tflite else ""))
    needed = (["calibration"] if int8 else []) + (["data"] if qat_epochs else []) + (
        [] if saved_model else ["verify_data"])
    # before any slow work: a missing flag fails now
    chosen = export_data(model, needed, {"calibration": calibration, "data": data,
                                         "verify_data": verify_data})
    for name, (spec, source) in chosen.items():  # a flag given, or the run's recorded data
        check_data(*((source[2:], spec) if source.startswith("--") else (name, spec, source)))
    from keras_effnet.export.tflite_metadata import TFLiteMetadata, read_labels_file
    from keras_effnet.export.verify import thresholds_for

    thresholds_for(quantize if tflite else "none", thresholds)
    given = read_labels_file(labels) if labels else None
    written = metadata and TFLiteMetadata(description=description,
                                          version=model_version or "1", author=author,
                                          license=license)
    for name, (spec, source) in chosen.items():
        role, split = EXPORT_DATA[name]
        stage("export", f"{role} data: {spec}, {split} split ({source})")
    from keras_effnet.artifacts import load_model

    stage("export", f"loading {model}")
    keras_model = load_model(model, compile=False)
    from keras_effnet import export as library

    run = RunFolder.beside(os.path.abspath(model))
    chosen_labels = choose_labels(given, getattr(keras_model, "class_names", None), run,
                                  model=model)
    names, count = chosen_labels.names, len(chosen_labels.names or ())
    if not saved_model or names:
        stage("export", "labels: " + {
            "given": f"{count} from {labels}", "own": f"the model's {count} class names",
            "run": f"{count} class names of the run, recorded in {run.summary_path}",
            "none": "none (no --labels, no class names in the model or its run): the "
                    "artifact's scores will carry class indices only"}[chosen_labels.origin])
    if out and out.endswith(("/", os.sep)):
        os.makedirs(out, exist_ok=True)
    if saved_model:
        stage("export", f"writing SavedModel {path}")
        library.to_saved_model(keras_model, path)
        stage("export", f"wrote {path}")
        return None
    if qat_epochs:
        stage("export", f"quantization-aware fine-tuning, {qat_epochs} epochs")
        keras_model = library.fine_tune(keras_model, chosen["data"][0], epochs=qat_epochs,
                                        batch_size=batch_size, seed=seed)
    stage("export", f"converting to {format}"
          + (f" ({quantize})" if tflite else f" (opset {opset})") + ", then verifying")
    common = {"verify_data": chosen["verify_data"][0], "thresholds": thresholds or {},
              "labels": names, "verify_count": verify_count}
    try:
        if tflite:
            report = library.to_tflite(
                keras_model, path, quantize, io_dtype=io_dtype, bias_correction=bias_correction,
                representative_data=chosen["calibration"][0] if int8 else None,
                metadata=written, target=target, layer_report=layer_report,
                float_layers=float_layers, **common)
        else:
            report = library.to_onnx(keras_model, path, opset, **common)
    except library.VerificationError as failed:
        _show(failed.report)
        raise
    _show(report)
    if not report["decisive_images"]:
        stage("export", f"note: no image has a float top-1/top-2 margin above "
                        f"{report['near_tie_margin']} (near-constant outputs: an untrained "
                        "model?), so top-1 agreement and SQNR say nothing here and were not "
                        "gated")
    if tflite:
        stage("export", metadata_line(report["tflite_metadata"]))
    stage("export", f"wrote {path} and {path}.json")
    return report


def _show(report: dict) -> None:
    """An artifact's verification table, its verdict and its int8 layer lines."""
    print(report_table([report]))
    for line in [report["checked"], *layer_lines(report)]:
        stage("export", line)


PREDICT_FLAGS = {
    "model": "the model to classify with: .keras, .tflite or .onnx (required)",
    "top_k": "labels to print per image", "json": "print the result as JSON",
    "max_pixels": "images above this many pixels (read from the file's header, before decoding) "
                  "are refused: decompression bombs"}


def predict(images: list[str], *, model: str | None = None, top_k: int = 5,
            json: bool = False, max_pixels: int = 100_000_000) -> dict:
    """Classify images (files or folders) with a .keras, .tflite or .onnx model; print the
    top-k labels with their probabilities (--json: as JSON).

    Images get the evaluation crop and resize of training; the labels come from the file's
    metadata, else the run's summary.json beside it, else class indices. Files that are not
    readable images are named and skipped; it fails when nothing was classified."""
    from keras_effnet.errors import UserError
    from keras_effnet.export.predict import predict as classify

    if not model:
        raise UsageError("--model=PATH (.keras, .tflite or .onnx) is required")
    if not images:
        raise UsageError("give the images to classify: effnet predict --model=M IMAGE|FOLDER …")
    result = classify(model, images, top_k=top_k, max_pixels=max_pixels)
    for skipped in result["skipped"]:
        print(f"effnet predict: skipped {flag_syntax(skipped['error'], predict, PREDICT_FLAGS)}",
              file=sys.stderr)
    if json:
        print(dumps(result, indent=2))
    else:
        print(f"labels: {result['labels_source']}")
        for item in result["predictions"]:
            print(f"{item['image']}: " + ", ".join(
                f"{top['label']} {top['probability']:.3f}" for top in item["top"]))
    if not result["predictions"]:
        raise UserError(f"no image classified ({len(result['skipped'])} skipped)")
    return result
