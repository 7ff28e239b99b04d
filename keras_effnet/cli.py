"""The `effnet` command line:
effnet {quickstart|build|profile|train|eval|export|predict|app|serve|search|budget}.

    effnet quickstart              # build → train → int8 TFLite + ONNX → verify → report
    effnet quickstart --data=folder:/data/my_images --phi=1 --base_resolution=96
    effnet profile --variants=b0,b1,b2,b3,b4,b5,b6,b7
    effnet build --variant=lite0 --num_classes=10 --out=lite0.keras
    effnet train --variant=lite0 --data=folder:/data/my_images --resolution=64 --out=runs/mine
    effnet eval --model=runs/mine/model.keras --data=folder:/data/my_images
    effnet export --model=runs/mine/model.keras --quantize=int8 --out=deploy/  # the run's data
    effnet predict --model=deploy/model_int8.tflite photo.jpg more_photos/
    effnet app --model=deploy/model_int8.tflite --out=app --examples=more_photos/ --serve
    effnet serve app
    effnet search --base=lite --data=folder:/data/my_images --resolution=64 --epochs=5 --seeds=2
    effnet budget --base=lite --latency_ms=5 --quantize=int8 --threads=2

Each command takes its own flags (`effnet COMMAND --help` lists them); a flag given to a
command that does not take it is an error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys

from absl import app, flags, logging

FLAGS = flags.FLAGS
# `effnet quickstart`'s own defaults, used for those flags the user did not pass (`effnet train`
# keeps the flags' defaults). The default model (lite0, no --variant/--phi) fine-tunes the
# ImageNet Lite0 weights at 64 px: 4 epochs of 25 steps reach about 0.98 validation top-1 on
# the embedded set in ~40 s on 2 cores, where 12 epochs from scratch at 48 px reached 0.64-0.69
# (BUILD_NOTES.md, "Main job"). With the short recipe, a quarter of its learning rate suits
# fine-tuning; from scratch, twice its rate learns fastest in few epochs.
QUICKSTART_DEFAULTS = {"data": "synthetic?train=1600&validation=400", "epochs": 4,
                       "batch_size": 64, "base_resolution": 64}
QUICKSTART_LEARNING_RATES = {"fine-tuning": 0.006, "from scratch": 0.048}
# Each flag's help here is its meaning wherever it is used; COMMAND_FLAGS says which commands
# take it and, where the meaning (or default) differs, what it means for that command.
flags.DEFINE_string("variant", None, "released variant: b0..b7, lite0..lite4, v2-b0..v2-b3, "
                    "v2-s, v2-m, v2-l (also efficientnetv2-s)")
flags.DEFINE_list("variants", None, "comma-separated released variants")
flags.DEFINE_list("phi", None, "compound coefficient φ")
flags.DEFINE_string("base", "efficientnet", "base network for φ: efficientnet, lite, "
                    "efficientnetv2, efficientnetv2-s, efficientnetv2-m, efficientnetv2-l, "
                    "mobilenet_v1, mobilenet_v2, resnet50")
flags.DEFINE_integer("base_resolution", None, "resolution at φ = 0 (default: the base's own: 224; "
                     "V2-S 384, V2-M and V2-L 480)")
flags.DEFINE_integer("resolution", None, "input size of the built model (default: the config's)")
flags.DEFINE_integer("num_classes", 1000, "classifier outputs")
flags.DEFINE_string("weights", None, "imagenet (b0..b7, lite0..lite2, v2-b0..v2-l), a "
                    "weights file: "
                    "keras.applications .h5/.keras/.weights.h5, or a PyTorch checkpoint "
                    ".pth/.safetensors (timm tf_efficientnet_*, efficientnet_pytorch, "
                    "efficientnet_lite_pytorch), or none (random initialisation)")
flags.DEFINE_bool("skip_head", False, "with --weights: leave the classifier freshly initialised "
                  "(a new label set)")
flags.DEFINE_string("out", None, "where to write (see the command's --help)")
flags.DEFINE_bool("per_layer", False, "print the per-layer table too")
flags.DEFINE_bool("summary", False, "print the Keras layer summary")
flags.DEFINE_string("data", "synthetic", "data spec: synthetic | folder:PATH | tfrecord:GLOB")
flags.DEFINE_integer("epochs", 25, "training epochs")
flags.DEFINE_integer("batch_size", 64, "global batch size (split across replicas)")
flags.DEFINE_enum("recipe", "short", ["short", "paper"], "training recipe (see docs/training.md)")
flags.DEFINE_enum("strategy", "auto", ["auto", "default", "mirrored", "multi_worker", "tpu"],
                  "tf.distribute strategy")
flags.DEFINE_enum("mixed_precision", "none", ["none", "auto", "float16", "bfloat16"],
                  "mixed-precision policy")
flags.DEFINE_float("learning_rate", None, "override the recipe's learning rate (per 256 images)")
flags.DEFINE_bool("progressive", False, "progressive learning (EfficientNetV2): image size, "
                  "dropout, RandAugment and mixup grow together over --progressive_stages")
flags.DEFINE_enum("progressive_preset", "derived", ["derived", "v2-s", "v2-m", "v2-l"],
                  "with --progressive: the V2 paper's Table 6 settings, or derived from the "
                  "model (docs/efficientnetv2.md)")
flags.DEFINE_integer("progressive_stages", 4, "with --progressive: the number of stages")
flags.DEFINE_integer("progressive_start", None, "with --progressive: the first stage's image "
                     "size (default: the preset's, or 128/300 of the final size)")
flags.DEFINE_integer("seed", 0, "random seed")
flags.DEFINE_string("model", None, "a saved .keras model")
flags.DEFINE_enum("format", "tflite", ["tflite", "onnx", "saved_model"], "export format")
flags.DEFINE_enum("quantize", "none", ["none", "float16", "dynamic", "int8"], "TFLite mode")
flags.DEFINE_enum("io_dtype", "float32", ["float32", "uint8", "int8"], "int8 TFLite input/output")
flags.DEFINE_string("calibration", None, "data spec whose train split calibrates int8")
flags.DEFINE_bool("bias_correction", True, "int8: shift each layer's bias to cancel the mean "
                  "error of its rounded weights on the calibration images (--nobias_correction: "
                  "plain PTQ)")
flags.DEFINE_string("verify_data", None, "data spec whose validation split the artifact is "
                    "verified on")
flags.DEFINE_integer("verify_count", 64, "verification: the number of images of the "
                     "verification split the artifact is verified on")
flags.DEFINE_integer("opset", 17, "ONNX opset")
flags.DEFINE_list("points", None, "explicit alpha,beta,gamma triples separated by ';' "
                  "(e.g. \"1.2,1.1,1.15;1.3,1.05,1.15\"); default: the grid")
flags.DEFINE_float("step", 0.05, "grid step of alpha, beta, gamma")
flags.DEFINE_enum("sampler", "grid", ["grid", "tpe"], "the paper's grid, or Optuna's TPE over "
                  "the continuous box (--max_trials points)")
flags.DEFINE_float("tolerance", 0.15, "relative tolerance of the measured MACs multiplier "
                   "around --target")
flags.DEFINE_float("target", 2.0, "MACs multiplier of a candidate over the base (φ = 1)")
flags.DEFINE_integer("max_trials", 8, "the N grid points nearest the paper's (1.2, 1.1, 1.15), "
                     "besides the 4 reference rows")
flags.DEFINE_integer("seeds", 2, "training seeds per candidate")
flags.DEFINE_string("storage", None, "Optuna storage URL shared by all workers (default: "
                    "SQLite in --out)")
flags.DEFINE_string("study", None, "study name (default: effnet-search-<base>)")
flags.DEFINE_integer("grace_period", 60, "seconds without a heartbeat after which a worker's "
                     "trial counts as dead and is re-queued (a killed worker)")
flags.DEFINE_float("alpha", None, "depth coefficient (default: the paper's 1.2)")
flags.DEFINE_float("beta", None, "width coefficient (default: the paper's 1.1)")
flags.DEFINE_float("gamma", None, "resolution coefficient (default: the paper's 1.15)")
flags.DEFINE_string("coefficients_from", None, "a search.json whose best alpha, beta, gamma "
                    "to use")
flags.DEFINE_float("macs", None, "budget: multiply-adds (e.g. 6e8)")
flags.DEFINE_float("params", None, "budget: trainable parameters")
flags.DEFINE_float("activations", None, "budget: conv/dense output elements")
flags.DEFINE_float("latency_ms", None, "budget: median TFLite latency on this machine (ms)")
flags.DEFINE_integer("threads", 2, "LiteRT threads for --latency_ms")
flags.DEFINE_bool("metadata", True, "TFLite: write the image-classifier metadata on-device "
                  "runtimes read (MediaPipe Tasks, LiteRT Task Library): input normalisation, "
                  "labels file, name, description (--nometadata: a bare file)")
flags.DEFINE_string("labels", None, "a labels file (one class name per line) for the artifact "
                    "(default: the model's class names, else the run's summary.json)")
flags.DEFINE_string("author", None, "TFLite metadata: the model's author")
flags.DEFINE_string("license", None, "TFLite metadata: the model's license")
flags.DEFINE_string("description", None, "TFLite metadata: the model's description (default: "
                    "its name, classes, input size and quantization)")
flags.DEFINE_string("model_version", None, "TFLite metadata: the model's version (default 1)")
flags.DEFINE_integer("top_k", 5, "labels to print per image")
flags.DEFINE_integer("max_pixels", 100_000_000, "images above this many pixels (read from the "
                     "file's header, before decoding) are refused: decompression bombs")
flags.DEFINE_bool("json", False, "print the result as JSON")
flags.DEFINE_string("examples", None, "a folder of images the web app shows as its gallery")
flags.DEFINE_string("runtime", None, "where the web app loads @mediapipe/tasks-vision from: an "
                    "http(s) URL, or a local copy (its npm install folder or `npm pack` "
                    "tarball) copied into the app so it works offline (default: its public CDN, "
                    "by the pinned version)")
flags.DEFINE_bool("serve", False, "then serve the app on 127.0.0.1 (Ctrl-C stops)")
flags.DEFINE_integer("port", 8000, "the port to serve on, on 127.0.0.1 (0: any free port)")
flags.DEFINE_integer("qat_epochs", 0, "with --quantize=int8: first fine-tune this many epochs "
                     "quantization-aware (the remedy when PTQ loses accuracy)")
# Verification thresholds (default: the artifact kind's, keras_effnet.export.THRESHOLDS)
THRESHOLD_HELP = {
    "min_agreement": "least top-1 agreement with Keras over all images, near-ties included",
    "min_decisive_agreement": "least top-1 agreement over the images whose float top-1/top-2 "
                              "margin exceeds --near_tie_margin",
    "min_decisive_images": "least number of decisive images (float top-1/top-2 margin above "
                           "--near_tie_margin) for the verification to judge; 0 accepts fewer",
    "near_tie_margin": "float top-1/top-2 probability margin at or below which an image is a "
                       "near-tie (counted, not gated)",
    "min_sqnr_db": "least signal-to-quantization-noise ratio of the outputs (dB)",
    "max_accuracy_drop": "largest accuracy loss against Keras on labelled data",
    "max_abs_diff": "largest |artifact - Keras| output difference (float artifacts; inf: not "
                    "gated)"}
for _name, _help in THRESHOLD_HELP.items():
    flags.DEFINE_float(_name, None, "verification: " + _help)
THRESHOLD_FLAGS = tuple(THRESHOLD_HELP)

_MODEL = ("variant", "phi", "base", "base_resolution", "resolution")
_TRAINING = {"data": None, "epochs": None, "batch_size": None, "recipe": None, "strategy": None,
             "mixed_precision": None, "learning_rate": None, "seed": None}
_DATA_SPEC = "synthetic | folder:PATH | tfrecord:GLOB"
# The flags each command takes: None keeps the flag's own help, a text replaces it for that
# command (the flag's default is appended unless the text states one). `effnet COMMAND --help`
# prints this; a flag given to a command not listing it is an error (nothing silently ignored).
COMMAND_FLAGS: dict[str, dict[str, str | None]] = {
    "profile": {"variant": None, "variants": None,
                "phi": "compound coefficient(s) φ, comma-separated", "base":
                "base network for φ: efficientnet, lite, mobilenet_v1, mobilenet_v2, resnet50 "
                "(the last three also print the paper's Table 3)",
                "base_resolution": None, "per_layer": None},
    "build": {**dict.fromkeys(_MODEL), "num_classes": "classifier outputs (default 1000)",
              "weights": None, "skip_head": None, "summary": None,
              "out": "the .keras file to write (default: none, print only)"},
    "train": {**dict.fromkeys(_MODEL), **_TRAINING,
              "data": f"training data spec: {_DATA_SPEC} (default synthetic); its validation "
                      "split is held out",
              "num_classes": "must equal the data's class count (default: the data's)",
              "weights": "starting weights: imagenet, a weights file (keras.applications "
                         ".h5/.keras/.weights.h5, or a PyTorch checkpoint .pth/.safetensors: "
                         "timm tf_efficientnet_*, efficientnet_pytorch, "
                         "efficientnet_lite_pytorch), or none: from scratch (default: a "
                         "released variant that has ImageNet weights starts from them with a "
                         "new head, any other model from scratch)",
              "skip_head": None, "progressive": None,
              "progressive_preset": None, "progressive_stages": None, "progressive_start": None,
              "out": "the run folder: model.keras, best.keras, summary.json, history.csv, "
                     "stages.json with --progressive, logs/ (default runs/train)"},
    "quickstart": {
        **dict.fromkeys(_MODEL), **_TRAINING,
        "variant": "released variant: b0..b7, lite0..lite4, v2-b0..v2-l (default lite0)",
        "base_resolution": "resolution at φ = 0 (default "
                           f"{QUICKSTART_DEFAULTS['base_resolution']})",
        "data": f"data spec: {_DATA_SPEC} (default {QUICKSTART_DEFAULTS['data']})",
        "epochs": f"training epochs (default {QUICKSTART_DEFAULTS['epochs']})",
        "batch_size": f"global batch size (default {QUICKSTART_DEFAULTS['batch_size']})",
        "learning_rate": "override the recipe's learning rate (per 256 images; default with "
                         "--recipe=short: " + ", ".join(
                             f"{rate} {kind}" for kind, rate in QUICKSTART_LEARNING_RATES.items())
                         + ")",
        "weights": "starting weights: imagenet, or a weights file (default: a released "
                   "variant's ImageNet weights with a new head, as the default lite0; none for "
                   "--phi; --weights=none or --weights= trains from scratch)",
        "out": "the run folder (default runs/quickstart)"},
    "eval": {"model": "the .keras model to score",
             "data": f"data spec whose validation split is scored: {_DATA_SPEC} (default "
                     "synthetic)",
             "batch_size": None,
             "resolution": "must equal the model's input size (default: the model's)"},
    "export": {
        "model": "the .keras model to export (required)", "format": None,
        "quantize": None, "io_dtype": None, "opset": None, "bias_correction": None,
        "calibration": "int8: data spec whose train split calibrates (default: the data of "
                       "the `effnet train` run that wrote --model, recorded in its "
                       "summary.json; else --data or --verify_data)",
        "verify_data": "data spec whose validation split verifies the artifact (default: the "
                       "run's data; else --calibration or --data)",
        "verify_count": None,
        "qat_epochs": None, "labels": None, "metadata": None, "author": None, "license": None,
        "description": None, "model_version": None,
        "data": "with --qat_epochs: data spec whose train split fine-tunes (default: the "
                "run's data; else --calibration or --verify_data)",
        "batch_size": "with --qat_epochs: fine-tuning batch size", "seed": "with "
        "--qat_epochs: fine-tuning seed",
        "out": "a file, or a folder (an existing one, or a path ending in /) to write "
               "<model>_<quantize>.tflite / <model>.onnx / <model>_saved_model into "
               "(default: beside --model)",
        **dict.fromkeys(THRESHOLD_FLAGS)},
    "predict": {"model": "the model to classify with: .keras, .tflite or .onnx (required)",
                "top_k": None, "json": None, "max_pixels": None},
    "app": {"model": "the .tflite file with image-classifier metadata to classify with "
                     "(required)",
            "out": "the new (or empty) folder to write the web app into (required)",
            "examples": None, "runtime": None, "top_k": "labels shown per image", "serve": None,
            "port": "with --serve: the port on 127.0.0.1 (0: any free port)"},
    "serve": {"port": None},
    "search": {"base": "base network whose alpha, beta, gamma to search",
               "data": f"data spec every trial trains on (required): {_DATA_SPEC}",
               "points": None, "step": None, "sampler": None, "tolerance": None,
               "target": None, "max_trials": None, "seeds": None,
               "epochs": "training epochs of each trial", "resolution": "training "
               "resolution of each trial (default: the base's)",
               "batch_size": None, "recipe": None, "strategy": None, "storage": None,
               "grace_period": None,
               "study": None, "out": "the search folder (default runs/search)"},
    "budget": {"base": "base network to scale", "base_resolution": None,
               "num_classes": "classifier outputs (default 1000)", "alpha": None,
               "beta": None, "gamma": None, "coefficients_from": None, "macs": None,
               "params": None, "activations": None, "latency_ms": None, "threads": None,
               "quantize": "TFLite mode whose latency --latency_ms measures (default int8)"},
}

def _configs():
    """Yield the ModelConfigs the flags ask for (profile: many; build: the first)."""
    import keras_effnet

    kwargs = {"base_resolution": FLAGS.base_resolution}
    if bool(FLAGS.variants or FLAGS.variant) == bool(FLAGS.phi):
        if not (FLAGS.variants or FLAGS.variant) and _table3_rows():
            return  # `effnet profile --base=resnet50`: Table 3 alone
        raise app.UsageError("give exactly one of --variant/--variants and --phi")
    if FLAGS.phi:
        for text in FLAGS.phi:
            try:
                phi = float(text)
            except ValueError:
                raise app.UsageError(f"--phi: {text!r} is not a number") from None
            try:
                yield keras_effnet.scale(phi=phi, base=FLAGS.base, **kwargs)
            except ValueError as err:
                raise app.UsageError(str(err)) from None
    else:
        for name in FLAGS.variants or [FLAGS.variant]:
            yield keras_effnet.scale(name, **kwargs)


def _published(config):
    """The published `Variant` whose architecture `config` is (a released variant, or φ = 0
    of the stock bases: B0 / Lite0), else None. Its MACs hold at its own resolution only."""
    from keras_effnet import VARIANTS, scale

    from keras_effnet.scaling import variant_key

    key = None
    if config.phi is None:
        try:
            key = variant_key(config.name)
        except ValueError:
            return None
    elif config.phi == 0:
        key = {"efficientnet": "b0", "lite": "lite0", "efficientnetv2": "v2-b0"}.get(config.base)
    if key not in VARIANTS:
        return None
    ref = scale(key)
    same = dataclasses.replace(config, name=ref.name, phi=None, resolution=ref.resolution)
    return VARIANTS[key] if same == ref else None


def profile_table(configs) -> str:
    """Width, depth, resolution, params and MACs, with the published figures beside them."""
    from keras_effnet import profile

    head = (f"{'model':<26} {'width':>6} {'depth':>6} {'res':>5} {'params':>12} "
            f"{'published':>12} {'MACs (B)':>9} {'published':>9} {'ratio':>6}")
    rows = [head, "-" * len(head)]
    for config in configs:
        p = profile(config)
        ref = _published(config)
        macs = ref.macs if ref and ref.resolution == config.resolution else None
        rows.append(
            f"{config.name:<26} {config.width:>6.3f} {config.depth:>6.3f} {config.resolution:>5} "
            f"{p.trainable_params:>12,} {f'{ref.params:,}' if ref else '—':>12} "
            f"{p.macs / 1e9:>9.3f} {f'{macs / 1e9:.3f}' if macs else '—':>9} "
            f"{f'{p.macs / macs:.3f}' if macs else '—':>6}")
    rows.append("params: trainable, 1000 classes. MACs: conv/depthwise/dense multiply-adds "
                "(the paper's FLOPs); published: paper Table 2 / Lite reference README.")
    return "\n".join(rows)


def _table3_rows():
    from keras_effnet.scaling import TABLE3

    return [row for row in TABLE3 if row.base == FLAGS.base]


def table3_table(rows) -> str:
    """The paper's Table 3 rows of one base: our network's MACs beside the paper's FLOPs."""
    from keras_effnet import profile

    head = (f"{'Table 3 row':<22} {'model':<34} {'res':>4} {'params':>12} {'MACs (B)':>9} "
            f"{'paper (B)':>9} {'ratio':>6} {'paper top-1':>11}")
    lines = [head, "-" * len(head)]
    notes = []
    for row in rows:
        config = row.config()
        p = profile(config)
        lines.append(f"{row.base + ' ' + row.label:<22} {config.name:<34} {config.resolution:>4} "
                     f"{p.trainable_params:>12,} {p.macs / 1e9:>9.3f} {row.macs / 1e9:>9.1f} "
                     f"{p.macs / row.macs:>6.3f} {row.top1:>10.1f}%")
        if row.note:
            notes.append(f"{row.base} {row.label}: {row.note}")
    lines.append("Table 3 rows use the reference's depth rounding (ceil); top-1 is the paper's "
                 "(ImageNet), not measured here.")
    return "\n".join(lines + notes)


def cmd_profile() -> None:
    """Parameters and MACs of variants or φ values, beside the published figures."""
    from keras_effnet import profile

    configs = list(_configs())
    if FLAGS.per_layer:
        for config in configs:
            print(profile(config).table(), end="\n\n")
    if configs:
        print(profile_table(configs))
    if _table3_rows():
        print(("\n" if configs else "") + table3_table(_table3_rows()))


def cmd_build() -> None:
    """Build a model (optionally with --weights) and save it as .keras."""
    import keras_effnet
    from keras_effnet.files import check_writable_dir, save_model

    if FLAGS.out:
        check_writable_dir(FLAGS.out)  # fail before spending time on the build
    config = next(_configs())
    shape = None if FLAGS.resolution is None else (FLAGS.resolution, FLAGS.resolution, 3)
    model = keras_effnet.build(config, num_classes=FLAGS.num_classes, input_shape=shape,
                               weights=_weights(None), skip_head=FLAGS.skip_head)
    print(config.summary())
    if FLAGS.summary:
        model.summary()
    p = keras_effnet.profile(model)
    print(f"{model.name}: {p.trainable_params:,} trainable / {p.params:,} total parameters, "
          f"{p.macs / 1e9:.3f} B MACs at {p.resolution[0]}x{p.resolution[1]}")
    if FLAGS.out:
        save_model(model, FLAGS.out)
        print(f"saved {FLAGS.out}")


def _weights(default: str | None) -> str | None:
    """--weights as the library takes it: `default` when not given, None for `none` (or
    nothing: `--weights=`), else the value."""
    if not FLAGS["weights"].present:
        return default
    return None if FLAGS.weights.strip().lower() in ("", "none") else FLAGS.weights


def _recipe():
    """The --recipe, with --learning_rate when given."""
    from keras_effnet.train import Recipe

    overrides = {} if FLAGS.learning_rate is None else {"learning_rate": FLAGS.learning_rate}
    return Recipe.named(FLAGS.recipe, **overrides)


def _quickstart_flags() -> None:
    """Fill the flags the user did not pass with QUICKSTART_DEFAULTS; check --data up front."""
    for name, value in QUICKSTART_DEFAULTS.items():
        if not FLAGS[name].present:
            FLAGS[name].value = value
    _check_data("data", FLAGS.data)  # a bad spec fails here, before anything is written


def _check_data(flag: str, spec: str, source: str | None = None) -> None:
    """Check a data spec before any model work (`keras_effnet.data.check_spec`: the folder
    and its class sub-folders, the TFRecord files); the error names the flag, or where the
    spec came from (`source`)."""
    from keras_effnet.data import check_spec

    try:
        check_spec(spec)
    except (ValueError, FileNotFoundError) as err:
        where = f"--{flag}={spec}" if source is None else f"{spec} ({source})"
        raise type(err)(f"{where}: {err}") from None


def cmd_quickstart() -> None:
    """The main job: build, train, export (TFLite float32 and int8, ONNX) with the metadata apps
    read, verify, check in MediaPipe Tasks, classify an image, report.

    Each artifact is verified in its runtime before it is written. Defaults: lite0 at 64 px,
    fine-tuned from its ImageNet weights for 4 epochs of batch 64 on 1 600 synthetic images
    (400 held out). Any flag overrides them, e.g. --data=folder:PATH, --phi=1 --base=lite,
    --variant=lite2 --weights=imagenet, --base_resolution=96 (the φ = 0 size every model is
    scaled from), --epochs=30, --strategy=mirrored --mixed_precision=auto on GPUs."""
    import time

    started = time.monotonic()
    _quickstart_flags()
    import keras_effnet
    from keras_effnet import export
    from keras_effnet.train import starting_weights, train

    out = FLAGS.out or os.path.join("runs", "quickstart")
    data = FLAGS.data
    default_model = not (FLAGS.variant or FLAGS.phi)
    config = (keras_effnet.scale("lite0", base_resolution=FLAGS.base_resolution)
              if default_model else next(_configs()))
    # As `effnet train`: a released variant starts from its ImageNet weights (new head).
    weights, _, start = starting_weights(config, _weights("auto"), True)
    if FLAGS.recipe == "short" and not FLAGS["learning_rate"].present:  # tuned for it
        FLAGS.learning_rate = QUICKSTART_LEARNING_RATES["fine-tuning" if weights
                                                        else "from scratch"]
    resolution = FLAGS.resolution or config.resolution
    recipe = _recipe()
    print(f"[quickstart] 1/5 build {config.name} at {resolution} px, starting weights: {start}",
          flush=True)
    print(config.summary())
    print(f"[quickstart] 2/5 {'fine-tune' if weights else 'train'} on {data} for {FLAGS.epochs} "
          f"epochs of batch {FLAGS.batch_size}, {recipe.name} recipe ({recipe.optimizer}, "
          f"learning rate {recipe.learning_rate:g} per 256 images) -> {out}", flush=True)
    summary = train(config, data=data, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
                    recipe=recipe, strategy=FLAGS.strategy,
                    mixed_precision=FLAGS.mixed_precision, resolution=resolution, out=out,
                    seed=FLAGS.seed, weights=weights, skip_head=weights is not None)
    trained = time.monotonic()
    model = keras_effnet.load_model(os.path.join(out, "model.keras"), compile=False)
    print("[quickstart] 3/5 export float32 and int8 TFLite (with image-classifier metadata and "
          "labels) and ONNX, verify in their runtimes", flush=True)
    common = {"verify_data": data, "verify_count": 256}
    jobs = [(export.to_tflite, "model_float32.tflite", {}),
            (export.to_tflite, "model_int8.tflite", {"quantize": "int8",
                                                     "representative_data": data}),
            (export.to_onnx, "model.onnx", {})]
    reports = []
    with export.traced(model) as graph:  # one trace and SavedModel for the three artifacts
        for convert, name, kwargs in jobs:
            try:
                reports.append(convert(graph, os.path.join(out, name), **kwargs, **common))
            except export.VerificationError as failed:  # reported in the table, not written
                reports.append({**failed.report, "artifact": name})
    exported = time.monotonic()
    int8 = os.path.join(out, "model_int8.tflite")
    print("[quickstart] 4/5 check model_int8.tflite in MediaPipe Tasks' ImageClassifier",
          flush=True)
    client = _client_check(int8, data, resolution)
    print("[quickstart] 5/5 report")
    scores = summary["validation"]
    print(f"validation top-1 (Keras, {summary['data']['validation_size']} images): "
          f"{scores['accuracy']:.4f}" + (f", top-5 {scores['top5']:.4f}" if "top5" in scores
                                         else ""))
    print(report_table(reports))
    for r in reports:
        print(f"{r['artifact']}: {r['checked']}")
        if r.get("tflite_metadata"):
            print(f"{r['artifact']}: {metadata_line(r['tflite_metadata'])}")
    print(client)
    example = _example_image(data, resolution, out)
    if os.path.exists(int8):
        from keras_effnet.export.predict import predict

        top = predict(int8, [example], top_k=3)["predictions"][0]["top"]
        print(f"$ effnet predict --model={int8} {example}\n{example}: " + ", ".join(
            f"{t['label']} {t['probability']:.3f}" for t in top))
    finished = time.monotonic()
    print(f"time: {finished - started:.0f} s ({trained - started:.0f} s building and training, "
          f"{exported - trained:.0f} s exporting and verifying, {finished - exported:.0f} s "
          "checking in MediaPipe and predicting)")
    print(f"artifacts in {out}: model.keras, model_float32.tflite, model_int8.tflite, "
          "model.onnx (each with a .json report), summary.json, history.csv, logs/, "
          f"{os.path.basename(example)}")
    failed = [r["artifact"] for r in reports if not r["passed"]]
    if failed:
        raise RuntimeError(f"verification failed for {', '.join(failed)} (see the table); "
                           "those artifacts were not written")


def _client_check(path: str, data: str, resolution: int) -> str:
    """One line: the int8 file in MediaPipe Tasks against the LiteRT interpreter."""
    from keras_effnet.data import examples
    from keras_effnet.export import mediapipe_client

    if not os.path.exists(path):
        return "MediaPipe check: skipped (the int8 file was not written)"
    if not mediapipe_client.available():
        return ("MediaPipe check: skipped (mediapipe is not installed here; `make setup` "
                "installs it)")
    images, targets = examples(data, resolution, 64, split="validation")
    checked = mediapipe_client.check(path, images, targets)
    return (f"MediaPipe Tasks ImageClassifier on model_int8.tflite, {checked['images']} "
            f"validation images: loads as is, top-1 agrees with the LiteRT interpreter on "
            f"{checked['top1_agreement']:.0%}, scores within "
            + (f"{checked['max_score_diff']:.2g}" if checked["output_step"] is None else
               f"{checked['max_score_diff_steps']:g} output steps")
            + ", labels "
            f"{'as in the run' if checked['labels_agree'] else 'DIFFER'}, top-1 accuracy "
            f"{checked['accuracy']:.3f}")


def _example_image(data: str, resolution: int, out: str) -> str:
    """A validation image of the run's data, written as PNG into `out` (what `effnet predict`
    is shown on)."""
    import numpy as np
    import tensorflow as tf

    from keras_effnet.data import examples
    from keras_effnet.files import atomic_path

    image, _ = examples(data, resolution, 1, split="validation")
    path = os.path.join(out, "example.png")
    with atomic_path(path) as tmp:
        tf.io.write_file(tmp, tf.io.encode_png(np.clip(np.round(image[0]), 0, 255)
                                               .astype("uint8")))
    return path


def cmd_train() -> None:
    """Train a model on a data spec into a run folder: a released variant that has ImageNet
    weights fine-tunes them with a new head, any other model trains from scratch (--weights
    says otherwise)."""
    _check_data("data", FLAGS.data)
    progressive = _progressive()  # its usage errors too, before TensorFlow starts
    from keras_effnet.train import starting_weights, train

    config, weights = next(_configs()), _weights("auto")
    print(f"starting weights: {starting_weights(config, weights, FLAGS.skip_head)[2]}",
          flush=True)
    # by name without --learning_rate: the library picks the recipe's fine-tuning rate
    recipe = FLAGS.recipe if FLAGS.learning_rate is None else _recipe()
    summary = train(config, data=FLAGS.data, epochs=FLAGS.epochs,
                    batch_size=FLAGS.batch_size, recipe=recipe,
                    strategy=FLAGS.strategy, mixed_precision=FLAGS.mixed_precision,
                    resolution=FLAGS.resolution, out=FLAGS.out or "runs/train", seed=FLAGS.seed,
                    num_classes=FLAGS.num_classes if FLAGS["num_classes"].present else None,
                    weights=weights, skip_head=FLAGS.skip_head, progressive=progressive)
    for stage in summary.get("progressive", {}).get("stages", []):
        print(f"stage {stage['index'] + 1}: epochs {stage['first_epoch'] + 1}-"
              f"{stage['end_epoch']} at {stage['size']} px, dropout {stage['dropout']:.3g}, "
              f"RandAugment {stage['randaugment']:.3g}, mixup {stage['mixup']:.3g}: "
              f"{stage['seconds']:.0f} s, val top-1 {stage['val_accuracy']:.4f}")
    scores = summary["validation"]
    print(f"validation: top-1 {scores['accuracy']:.4f}"
          + (f", top-5 {scores['top5']:.4f}" if "top5" in scores else "")
          + f" -> {FLAGS.out or 'runs/train'}/model.keras")


def _progressive():
    """--progressive's schedule (None without it); its settings without it are refused."""
    from keras_effnet.progressive import Progressive

    given = [f"--{name}" for name in ("progressive_preset", "progressive_stages",
                                      "progressive_start") if FLAGS[name].present]
    if not FLAGS.progressive:
        if given:
            raise app.UsageError(f"{', '.join(given)} need(s) --progressive")
        return None
    overrides = {"stages": FLAGS.progressive_stages}
    if FLAGS.progressive_start is not None:
        overrides["start_size"] = FLAGS.progressive_start
    try:
        return Progressive.preset(FLAGS.progressive_preset, **overrides)
    except ValueError as err:
        raise app.UsageError(str(err)) from None


def cmd_eval() -> None:
    """Top-1 / top-5 of a saved model on a data spec's validation split."""
    if not FLAGS.model:
        raise app.UsageError("--model=PATH.keras is required")
    _check_data("data", FLAGS.data)
    from keras_effnet.train import evaluate

    scores = evaluate(FLAGS.model, FLAGS.data, FLAGS.batch_size, resolution=FLAGS.resolution)
    print("  ".join(f"{name}: {value:.4f}" for name, value in scores.items()))


def _stage(text: str) -> None:
    """A progress line of the running command."""
    command = next((arg for arg in sys.argv[1:2] if arg in COMMANDS), "")
    print(f"[effnet {command}] {text}", flush=True)


def _number(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def report_table(reports: list[dict]) -> str:
    """The verification table printed by export and quickstart (the decisive agreement is over
    the images whose float top-1/top-2 margin exceeds the report's near_tie_margin)."""
    rows = [f"{'artifact':<28} {'size (MB)':>9} {'max |Δ|':>9} {'SQNR dB':>8} "
            f"{'top-1 agree':>11} {'decisive':>8} {'ties':>5} {'acc keras':>9} {'acc art.':>9} "
            f"{'ms (1 img)':>10}  ok"]
    for r in reports:
        sqnr = "inf" if r["sqnr_db"] is None else f"{r['sqnr_db']:.1f}"
        rows.append(f"{r['artifact']:<28} {r['size_bytes'] / 1e6:>9.2f} {r['max_abs_diff']:>9.2e} "
                    f"{sqnr:>8} {r['top1_agreement']:>11.4f} "
                    f"{_number(r['decisive_agreement'], '.4f'):>8} {r['near_ties']:>5} "
                    f"{_number(r.get('keras_accuracy'), '.4f'):>9} "
                    f"{_number(r.get('artifact_accuracy'), '.4f'):>9} "
                    f"{r['median_latency_ms']:>10.2f}  {'yes' if r['passed'] else 'NO'}")
    return "\n".join(rows)


EXPORT_NAMES = {"tflite": "_{quantize}.tflite", "onnx": ".onnx", "saved_model": "_saved_model"}
# `effnet export`'s data flags (in the order one stands in for another the user did not give):
# what each is for, and the split of its spec that the export library uses.
EXPORT_DATA = {"calibration": ("calibration", "train"), "data": ("QAT fine-tuning", "train"),
               "verify_data": ("verification", "validation")}


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


def run_summary(model: str) -> tuple[dict, str] | None:
    """(summary, its path) of the `effnet train` run that wrote `model`: the summary.json
    beside it that names it; None for any other model."""
    path = os.path.join(os.path.dirname(os.path.abspath(model)), "summary.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
        artifacts = summary.get("artifacts", {})
        ours = os.path.basename(model) in (artifacts.get("model"), artifacts.get("best"))
        if ours:
            summary["data"]["spec"]  # noqa: B018  (a summary of `effnet train` has it)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: not a summary.json that `effnet train` wrote ({err!r})") \
            from None
    return (summary, path) if ours else None


def recorded_data(model: str) -> tuple[str, str] | None:
    """(data spec, summary.json path) of the `effnet train` run that wrote `model`."""
    run = run_summary(model)
    return (run[0]["data"]["spec"], run[1]) if run and run[0]["data"]["spec"] else None


def export_data(model: str, needed: list[str]) -> dict[str, tuple[str, str]]:
    """{flag: (data spec, where it came from)} for the data flags in `needed`: the flag itself;
    else the data of the `effnet train` run that wrote `model`; else another data flag given
    (EXPORT_DATA's order). Data is never invented: with none of these, a usage error names
    the flag."""
    given = [name for name in EXPORT_DATA if FLAGS[name].present]
    run = recorded_data(model)
    chosen = {}
    for name in needed:
        if FLAGS[name].present:
            chosen[name] = (FLAGS[name].value, f"--{name}")
        elif run:
            chosen[name] = (run[0], f"the run's data, recorded in {run[1]}")
        elif given:
            chosen[name] = (FLAGS[given[0]].value, f"--{given[0]}")
        else:
            raise app.UsageError(
                f"pass --{name}=SPEC (folder:PATH, tfrecord:GLOB, or synthetic for a demo): "
                f"{model} has no summary.json of an `effnet train` run beside it to take the "
                "data from")
    return chosen


def export_thresholds() -> dict[str, float]:
    """The verification thresholds given on the command line (checked; the rest: the kind's
    defaults)."""
    from keras_effnet.export.verify import thresholds_for

    given = {name: FLAGS[name].value for name in THRESHOLD_FLAGS if FLAGS[name].present}
    try:
        thresholds_for(FLAGS.quantize if FLAGS.format == "tflite" else "none", given)
    except ValueError as err:
        raise app.UsageError(f"--{err}") from None
    return given


def cmd_export() -> None:
    """Convert a .keras model to TFLite / ONNX / SavedModel, verified before it is written.

    The artifact runs in its runtime beside the Keras model; only if it passes are it and its
    .json report written (else the report is kept as <artifact>.failed.json).

    Calibration (train split), verification (validation split) and QAT fine-tuning (train
    split) use the data of the `effnet train` run that wrote --model (its summary.json)
    unless --calibration / --verify_data / --data say otherwise; any other model needs one
    of them (synthetic data only when asked for: --calibration=synthetic). Verification
    gates on the top-1 agreement of the decisive images (float top-1/top-2 margin above
    --near_tie_margin), the SQNR, max |Δ| and the accuracy drop; near-ties are counted."""
    if not FLAGS.model:
        raise app.UsageError("--model=PATH.keras is required")
    out = export_path(FLAGS.model, FLAGS.out, FLAGS.format, FLAGS.quantize)
    int8 = FLAGS.format == "tflite" and FLAGS.quantize == "int8"
    if FLAGS.qat_epochs and not int8:
        raise app.UsageError("--qat_epochs needs --format=tflite --quantize=int8")
    # flags of one format or mode given to another would be silently ignored: refuse them
    tflite = FLAGS.format == "tflite"
    stray = [name for name, applies in (
        ("quantize", tflite), ("io_dtype", int8), ("bias_correction", int8),
        ("opset", FLAGS.format == "onnx"), ("labels", FLAGS.format != "saved_model"),
        ("verify_count", FLAGS.format != "saved_model"),
        *((name, tflite and FLAGS.metadata) for name in (
            "author", "license", "description", "model_version")), ("metadata", tflite))
        if FLAGS[name].present and not applies]
    if stray:
        raise app.UsageError(f"--{stray[0]} does not apply to --format={FLAGS.format}"
                             + (f" --quantize={FLAGS.quantize}" if FLAGS.format == "tflite"
                                else ""))
    needed = (["calibration"] if int8 else []) + (["data"] if FLAGS.qat_epochs else []) + (
        [] if FLAGS.format == "saved_model" else ["verify_data"])
    data = export_data(FLAGS.model, needed)  # before any slow work: a missing flag fails now
    for name, (spec, source) in data.items():  # a flag given, or the run's recorded data
        _check_data(*((source[2:], spec) if source.startswith("--") else (name, spec, source)))
    thresholds = export_thresholds()
    from keras_effnet.export.tflite_metadata import TFLiteMetadata, read_labels_file

    labels = read_labels_file(FLAGS.labels) if FLAGS.labels else None
    metadata = FLAGS.metadata and TFLiteMetadata(
        description=FLAGS.description, version=FLAGS.model_version or "1",
        author=FLAGS.author, license=FLAGS.license)
    for name, (spec, source) in data.items():
        role, split = EXPORT_DATA[name]
        _stage(f"{role} data: {spec}, {split} split ({source})")
    from keras_effnet.artifacts import load_model

    _stage(f"loading {FLAGS.model}")
    model = load_model(FLAGS.model, compile=False)
    from keras_effnet import export

    run = run_summary(FLAGS.model)
    if labels is not None:
        _stage(f"labels: {len(labels)} from {FLAGS.labels}")
    elif getattr(model, "class_names", None) is not None:
        _stage(f"labels: the model's {len(model.class_names)} class names")
    elif run and run[0]["data"].get("class_names"):
        labels = run[0]["data"]["class_names"]
        _stage(f"labels: {len(labels)} class names of the run, recorded in {run[1]}")
    elif FLAGS.format != "saved_model":
        _stage("labels: none (no --labels, no class names in the model or its run): the "
               "artifact's scores will carry class indices only")
    if FLAGS.out and FLAGS.out.endswith(("/", os.sep)):
        os.makedirs(FLAGS.out, exist_ok=True)
    if FLAGS.format == "saved_model":
        _stage(f"writing SavedModel {out}")
        export.to_saved_model(model, out)
        _stage(f"wrote {out}")
        return
    calibration = data["calibration"][0] if int8 else None
    if FLAGS.qat_epochs:
        _stage(f"quantization-aware fine-tuning, {FLAGS.qat_epochs} epochs")
        model = export.fine_tune(model, data["data"][0], epochs=FLAGS.qat_epochs,
                                 batch_size=FLAGS.batch_size, seed=FLAGS.seed)
    _stage(f"converting to {FLAGS.format}"
           + (f" ({FLAGS.quantize})" if FLAGS.format == "tflite" else f" (opset {FLAGS.opset})")
           + ", then verifying")
    try:
        if FLAGS.format == "tflite":
            report = export.to_tflite(model, out, FLAGS.quantize, representative_data=calibration,
                                      io_dtype=FLAGS.io_dtype, verify_data=data["verify_data"][0],
                                      thresholds=thresholds, bias_correction=FLAGS.bias_correction,
                                      labels=labels, metadata=metadata,
                                      verify_count=FLAGS.verify_count)
        else:
            report = export.to_onnx(model, out, FLAGS.opset, verify_data=data["verify_data"][0],
                                    thresholds=thresholds, labels=labels,
                                    verify_count=FLAGS.verify_count)
    except export.VerificationError as failed:
        print(report_table([failed.report]))
        _stage(failed.report["checked"])
        raise
    print(report_table([report]))
    _stage(report["checked"])
    if not report["decisive_images"]:
        _stage(f"note: no image has a float top-1/top-2 margin above {report['near_tie_margin']}"
               " (near-constant outputs: an untrained model?), so top-1 agreement and SQNR "
               "say nothing here and were not gated")
    if FLAGS.format == "tflite":
        _stage(metadata_line(report["tflite_metadata"]))
    _stage(f"wrote {out} and {out}.json")


def metadata_line(written: dict) -> str:
    """What a TFLite file's metadata says, in one line of a report."""
    if not written["written"]:
        return "metadata: none (--nometadata): on-device runtimes that need it will refuse the file"
    return (f"metadata: image classifier {written['name']!r}, input {written['input']['dtype']} "
            f"as (pixels - {written['input']['normalization_mean']:g}) / "
            f"{written['input']['normalization_std']:g}, "
            + (f"{written['labels']} labels" if written["labels"] else "no labels")
            + " (loads as is in MediaPipe Tasks / LiteRT)")


def cmd_predict(images: list[str]) -> None:
    """Classify images (files or folders) with a .keras, .tflite or .onnx model; print the
    top-k labels with their probabilities (--json: as JSON).

    Images get the evaluation crop and resize of training; the labels come from the file's
    metadata, else the run's summary.json beside it, else class indices. Files that are not
    readable images are named and skipped; it fails when nothing was classified."""
    from keras_effnet.export.predict import predict

    if not FLAGS.model:
        raise app.UsageError("--model=PATH (.keras, .tflite or .onnx) is required")
    if not images:
        raise app.UsageError("give the images to classify: effnet predict --model=M IMAGE|FOLDER …")
    result = predict(FLAGS.model, images, top_k=FLAGS.top_k, max_pixels=FLAGS.max_pixels)
    for skipped in result["skipped"]:
        print(f"effnet predict: skipped {cli_syntax(skipped['error'], 'predict')}",
              file=sys.stderr)
    if FLAGS.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"labels: {result['labels_source']}")
        for item in result["predictions"]:
            print(f"{item['image']}: " + ", ".join(
                f"{top['label']} {top['probability']:.3f}" for top in item["top"]))
    if not result["predictions"]:
        raise RuntimeError(f"no image classified ({len(result['skipped'])} skipped)")


def cmd_app() -> None:
    """Write a static web app that classifies images in the browser with a .tflite model
    (MediaPipe Tasks, WebAssembly: nothing runs on a server); --serve serves it.

    The folder holds index.html, its script and style, app.json (the model's name,
    description and labels from its metadata), the model and the --examples images. The page
    loads the pinned @mediapipe/tasks-vision from its public CDN, or from the app folder with
    --runtime=DIR (a local npm install or `npm pack` tarball: works offline)."""
    from keras_effnet.export.webapp import make_app, serve

    if not FLAGS.model or not FLAGS.out:
        raise app.UsageError("effnet app needs --model=M.tflite and --out=DIR")
    if FLAGS["port"].present and not FLAGS.serve:
        raise app.UsageError("--port applies with --serve")
    out = make_app(FLAGS.model, FLAGS.out, examples=FLAGS.examples, runtime=FLAGS.runtime,
                   top_k=FLAGS.top_k)
    with open(os.path.join(out, "app.json"), encoding="utf-8") as f:
        written = json.load(f)
    labels = written["labels"]
    _stage(f"wrote {out}: {written['name']} ({written['model']}, "
           f"{f'{len(labels)} labels' if labels else 'no labels: the page shows class indices'}"
           f", {len(written['examples'])} examples)")
    runtime = written["runtime"]
    _stage(f"runtime: {runtime['package']}@{runtime['version']} "
           + (f"from {runtime['url']} (the page needs the network)"
              if runtime["url"].startswith(("http://", "https://"))
              else f"copied into {os.path.join(out, runtime['url'])} (works offline)"))
    if FLAGS.serve:
        serve(out, FLAGS.port)
    else:
        _stage(f"try it: effnet serve {out}")


def cmd_serve(folders: list[str]) -> None:
    """Serve a web app folder (`effnet app`) on 127.0.0.1 and print its URL; Ctrl-C stops."""
    from keras_effnet.export.webapp import serve

    if len(folders) != 1:
        raise app.UsageError("give one app folder: effnet serve DIR [--port=N]; got "
                             f"{' '.join(folders) or 'none'}")
    serve(folders[0], FLAGS.port)


def cmd_search() -> None:
    """Search alpha, beta, gamma by short trainings on your data (Optuna)."""
    from keras_effnet.search import coefficients

    if not FLAGS["data"].present:  # a search ranks candidates on data: never invent it
        raise app.UsageError("effnet search needs --data=SPEC (folder:PATH, tfrecord:GLOB, or "
                             "synthetic for a demo)")
    _check_data("data", FLAGS.data)
    points = None
    if FLAGS.points:  # absl splits on commas; triples are separated by ';'
        points = [p for p in ",".join(FLAGS.points).split(";") if p.strip()]
    _stage(f"searching alpha, beta, gamma for {FLAGS.base} on {FLAGS.data} "
           f"({FLAGS.seeds} seeds, {FLAGS.epochs} epochs)")
    result = coefficients(
        FLAGS.base, FLAGS.data, points=points, target=FLAGS.target, tolerance=FLAGS.tolerance,
        step=FLAGS.step, max_trials=FLAGS.max_trials, seeds=FLAGS.seeds, epochs=FLAGS.epochs,
        resolution=FLAGS.resolution, batch_size=FLAGS.batch_size, recipe=FLAGS.recipe,
        storage=FLAGS.storage, study=FLAGS.study, out=FLAGS.out or "runs/search",
        strategy=FLAGS.strategy, sampler=FLAGS.sampler, grace_period=FLAGS.grace_period)
    best = result["best"]
    print(f"best: alpha={best['alpha']:g} beta={best['beta']:g} gamma={best['gamma']:g} "
          f"({best['role']}), val top-1 {best['val_top1_mean']:.3f} ± {best['val_top1_std']:.3f}"
          f"; {sum(r['tied_with_best'] for r in result['trials']) - 1} other(s) within the "
          "seed noise")
    _stage(f"wrote {FLAGS.out or 'runs/search'}/search.json, .md and .png")


def cmd_budget() -> None:
    """The largest φ whose model fits a budget (MACs, params, activations, latency)."""
    from keras_effnet.scaling import ALPHA, BETA, GAMMA
    from keras_effnet.search import fit_budget

    coefficients = [ALPHA, BETA, GAMMA]
    if FLAGS.coefficients_from:
        with open(FLAGS.coefficients_from, encoding="utf-8") as f:
            coefficients = json.load(f)["best"]["coefficients"]
    for i, name in enumerate(("alpha", "beta", "gamma")):
        if FLAGS[name].value is not None:
            coefficients[i] = FLAGS[name].value
    quantize = FLAGS.quantize if FLAGS["quantize"].present else "int8"
    phi, config, measured = fit_budget(
        FLAGS.base, *coefficients, macs=FLAGS.macs, params=FLAGS.params,
        activations=FLAGS.activations, latency_ms=FLAGS.latency_ms, quantize=quantize,
        threads=FLAGS.threads, base_resolution=FLAGS.base_resolution,
        num_classes=FLAGS.num_classes, verbose=FLAGS.latency_ms is not None)
    print(f"phi = {phi:.3f} (alpha={coefficients[0]:g}, beta={coefficients[1]:g}, "
          f"gamma={coefficients[2]:g}): {measured['budget']} {measured['value']:,.4g} of "
          f"{measured['limit']:,.4g} (margin {measured['margin']:,.4g}; "
          f"phi = {measured['next_phi']:.3f} exceeds it)")
    print(config.summary())


COMMANDS = {"build": cmd_build, "profile": cmd_profile, "quickstart": cmd_quickstart,
            "train": cmd_train, "eval": cmd_eval, "export": cmd_export, "predict": cmd_predict,
            "app": cmd_app, "serve": cmd_serve, "search": cmd_search, "budget": cmd_budget}
# the commands that take positional arguments, and what those are (their usage line)
POSITIONAL = {"predict": "IMAGE|FOLDER ...", "serve": "DIR"}


def check_flags(command: str) -> None:
    """Refuse a flag of this module given to a command that does not take it (COMMAND_FLAGS):
    nothing is silently ignored."""
    own = {flag.name for flag in FLAGS.get_flags_for_module(sys.modules[__name__])}
    wrong = sorted(name for name in own if FLAGS[name].present
                   and name not in COMMAND_FLAGS[command])
    if wrong:
        raise app.UsageError(f"not `effnet {command}` flag(s): "
                             f"{', '.join('--' + name for name in wrong)} "
                             f"(`effnet {command} --help` lists its flags)")


def command_help(command: str) -> str:
    """`effnet COMMAND --help`: what the command does, and the flags it takes with their
    meaning for it."""
    import inspect
    import textwrap

    lines = [" ".join(["usage: effnet", command, "[--flags]"]
                      + ([POSITIONAL[command]] if command in POSITIONAL else [])), "",
             inspect.cleandoc(COMMANDS[command].__doc__ or ""), "", "flags:"]
    for name, text in COMMAND_FLAGS[command].items():
        flag = FLAGS[name]
        default = ",".join(flag.default) if isinstance(flag.default, list) else flag.default
        if text is None:
            text = flag.help
        elif hasattr(flag.parser, "enum_values"):
            text = f"<{'|'.join(flag.parser.enum_values)}>: {text}"
        if "default" not in text and default is not None and default is not False:
            text += f" (default {default})"  # a command's own text states its own default
        if name in THRESHOLD_FLAGS:
            from keras_effnet.export.verify import THRESHOLDS

            text += " (default by --quantize: " + ", ".join(
                f"{kind} {'off' if limits[name] is None else limits[name]}"
                for kind, limits in THRESHOLDS.items()) + ")"
        lines.append(textwrap.fill(f"--{name}: {text}", 100, initial_indent="  ",
                                   subsequent_indent="      "))
    return "\n".join(lines)


def general_help() -> str:
    """`effnet --help`: the commands, each with the first paragraph of its description."""
    import inspect
    import textwrap

    lines = [(__doc__ or "").rstrip(), "", "commands (`effnet COMMAND --help` lists a "
             "command's flags; `effnet --helpfull` every flag):"]
    for name, command in COMMANDS.items():
        summary = " ".join(inspect.cleandoc(command.__doc__ or "").split("\n\n")[0].split())
        lines.append(textwrap.fill(summary, 100, initial_indent=f"  {name:<11} ",
                                   subsequent_indent=" " * 14))
    return "\n".join(lines)


# `name=value` as a Python message writes it (a quoted string, or a bare word up to a space or
# punctuation), not inside a path, a URL or a flag; and a Python call written out, left alone.
_KEYWORD = re.compile(r"(?<![\w.\-/?&:=])(?P<name>[A-Za-z_]\w*)="
                      r"(?P<value>'[^']*'|\"[^\"]*\"|[^\s,;()\[\]]*)")
_CALL = re.compile(r"(\b\w+\([^()]*\))")


def cli_syntax(message: str, command: str | None) -> str:
    """A library message as a CLI user types it: each `name=value` whose name is one of the
    command's flags becomes that flag (weights='/w.h5' -> --weights=/w.h5, skip_head=True ->
    --skip_head, weights=None -> --weights=none), and a flag then repeated in parentheses
    once. Other names, and Python calls written out (`f(a=1)`), stay as they are."""
    import shlex

    taken = COMMAND_FLAGS.get(command or "", {})

    def flag(match: re.Match) -> str:
        name, value = match["name"], match["value"]
        if name not in taken:
            return match[0]
        end = ""
        if value[:1] in ("'", '"'):
            value = value[1:-1]
        elif value.endswith("."):  # the end of a sentence
            value, end = value[:-1], "."
        if getattr(FLAGS[name], "boolean", False) and value in ("True", "False"):
            return f"--{'' if value == 'True' else 'no'}{name}{end}"
        value = "none" if value == "None" else value
        return f"--{name}={shlex.quote(value) if value else ''}{end}"

    parts = _CALL.split(message)
    text = "".join(part if i % 2 else _KEYWORD.sub(flag, part) for i, part in enumerate(parts))
    return re.sub(r"(--\w+(?:=[^\s()]+)?) \(\1\)", r"\1", text)


def main(argv: list[str]) -> None:
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress
        if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:  # else the user's own setting rules
            from keras_effnet.console import quiet_startup

            quiet_startup()  # before anything imports TensorFlow
    command = argv[1] if len(argv) > 1 and argv[1] in COMMANDS else None
    try:
        if command is None or (len(argv) > 2 and command not in POSITIONAL):
            raise app.UsageError(f"usage: effnet {{{'|'.join(COMMANDS)}}} [--flags]; "
                                 f"got {' '.join(argv[1:]) or 'no command'}")
        check_flags(command)
        COMMANDS[command](*([argv[2:]] if command in POSITIONAL else []))
    except (app.UsageError, ValueError, TypeError, FileNotFoundError, PermissionError,
            RuntimeError) as err:
        print(f"effnet{' ' + command if command else ''}: error: {cli_syntax(str(err), command)}",
              file=sys.stderr)
        sys.exit(2)


def run() -> None:
    # absl's own --help lists only __main__'s flags (none: they live here) and exits 1.
    if {"--help", "-?", "--helpshort", "-h"} & set(sys.argv[1:]):
        words = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
        print(command_help(words[0]) if words and words[0] in COMMANDS else general_help())
        sys.exit(0)
    app.run(main)


if __name__ == "__main__":
    run()
