"""The `effnet` command line: effnet {quickstart|build|profile|train|eval|export|search|budget}.

    effnet quickstart              # build → train → int8 TFLite + ONNX → verify → report
    effnet quickstart --data=folder:/data/my_images --phi=1 --base_resolution=96
    effnet profile --variants=b0,b1,b2,b3,b4,b5,b6,b7
    effnet build --variant=lite0 --num_classes=10 --out=lite0.keras
    effnet train --variant=lite0 --data=folder:/data/my_images --resolution=64 --out=runs/mine
    effnet eval --model=runs/mine/model.keras --data=folder:/data/my_images
    effnet export --model=runs/mine/model.keras --format=tflite --quantize=int8 --calibration=...
    effnet search --base=lite --data=folder:/data/my_images --resolution=64 --epochs=5 --seeds=2
    effnet budget --base=lite --latency_ms=5 --quantize=int8 --threads=2

Flags apply to the commands that use them (each flag's help says which).
"""

from __future__ import annotations

import dataclasses
import sys

from absl import app, flags, logging

FLAGS = flags.FLAGS
# `effnet quickstart`'s own defaults, used for those flags the user did not pass (`effnet train`
# keeps the flags' defaults). Chosen so that the whole job (train + 3 exports + verification)
# takes about 5 minutes on an otherwise idle 2-core CPU and still reaches about 0.6 validation
# top-1 (10 classes): lite0 at 48 px, 12 epochs of 25 steps, with twice the short recipe's
# learning rate (Adam 0.012 at batch 64; the short recipe's only; BUILD_NOTES.md).
QUICKSTART_DEFAULTS = {"data": "synthetic?train=1600&validation=400", "epochs": 12,
                       "batch_size": 64, "base_resolution": 48, "learning_rate": 0.048}
flags.DEFINE_string("variant", None, "released variant: b0..b7, lite0..lite4 (build)")
flags.DEFINE_list("variants", None, "comma-separated released variants (profile)")
flags.DEFINE_list("phi", None, "compound coefficient(s) φ, comma-separated for profile")
flags.DEFINE_string("base", "efficientnet", "base network for φ: efficientnet, lite, "
                    "mobilenet_v1, mobilenet_v2, resnet50 (profile of the last three also prints "
                    "the paper's Table 3)")
flags.DEFINE_integer("base_resolution", None, "resolution at φ = 0 (default: the base's 224; "
                     f"quickstart: {QUICKSTART_DEFAULTS['base_resolution']})")
flags.DEFINE_integer("resolution", None, "input size of the built model (default: the config's; "
                     "eval: must equal the model's)")
flags.DEFINE_integer("num_classes", 1000, "classifier outputs (build; train takes the data's "
                     "class count, and a --num_classes given must equal it)")
flags.DEFINE_string("weights", None, "keras.applications-format weights file to load")
flags.DEFINE_bool("skip_head", False, "with --weights: leave the classifier freshly initialised")
flags.DEFINE_string("out", None, "where to write the model (.keras) for build")
flags.DEFINE_bool("per_layer", False, "profile: print the per-layer table too")
flags.DEFINE_bool("summary", False, "build: print the Keras layer summary")
flags.DEFINE_string("data", "synthetic", "data spec: synthetic | folder:PATH | tfrecord:GLOB "
                    f"(quickstart: {QUICKSTART_DEFAULTS['data']})")
flags.DEFINE_integer("epochs", 25, "training epochs (quickstart: "
                     f"{QUICKSTART_DEFAULTS['epochs']})")
flags.DEFINE_integer("batch_size", 64, "global batch size (split across replicas; quickstart: "
                     f"{QUICKSTART_DEFAULTS['batch_size']})")
flags.DEFINE_enum("recipe", "short", ["short", "paper"], "training recipe (see README)")
flags.DEFINE_enum("strategy", "auto", ["auto", "default", "mirrored", "multi_worker", "tpu"],
                  "tf.distribute strategy")
flags.DEFINE_enum("mixed_precision", "none", ["none", "auto", "float16", "bfloat16"],
                  "mixed-precision policy")
flags.DEFINE_float("learning_rate", None, "override the recipe's learning rate (per 256 images; "
                   f"quickstart with --recipe=short: {QUICKSTART_DEFAULTS['learning_rate']})")
flags.DEFINE_integer("seed", 0, "random seed")
flags.DEFINE_string("model", None, "a saved .keras model (eval, export)")
flags.DEFINE_enum("format", "tflite", ["tflite", "onnx", "saved_model"], "export format")
flags.DEFINE_enum("quantize", "none", ["none", "float16", "dynamic", "int8"], "TFLite mode")
flags.DEFINE_enum("io_dtype", "float32", ["float32", "uint8", "int8"], "int8 TFLite input/output")
flags.DEFINE_string("calibration", "synthetic", "data spec for int8 calibration")
flags.DEFINE_string("verify_data", None, "data spec to verify on (default: --calibration for "
                    "int8, --data otherwise)")
flags.DEFINE_integer("opset", 17, "ONNX opset")
flags.DEFINE_list("points", None, "search: explicit alpha,beta,gamma triples separated by ';' "
                  "(e.g. \"1.2,1.1,1.15;1.3,1.05,1.15\"); default: the grid")
flags.DEFINE_float("step", 0.05, "search: grid step of alpha, beta, gamma")
flags.DEFINE_enum("sampler", "grid", ["grid", "tpe"], "search: the paper's grid, or Optuna's "
                  "TPE over the continuous box (--max_trials points)")
flags.DEFINE_float("tolerance", 0.15, "search: relative tolerance of the measured MACs "
                   "multiplier around --target")
flags.DEFINE_float("target", 2.0, "search: MACs multiplier of a candidate over the base (φ = 1)")
flags.DEFINE_integer("max_trials", 8, "search: the N grid points nearest the paper's "
                     "(1.2, 1.1, 1.15), besides the 4 reference rows")
flags.DEFINE_integer("seeds", 2, "search: training seeds per candidate")
flags.DEFINE_string("storage", None, "search: Optuna storage URL shared by all workers "
                    "(default: SQLite in --out)")
flags.DEFINE_string("study", None, "search: study name (default: effnet-search-<base>)")
flags.DEFINE_float("alpha", None, "budget: depth coefficient (default: the paper's 1.2)")
flags.DEFINE_float("beta", None, "budget: width coefficient (default: the paper's 1.1)")
flags.DEFINE_float("gamma", None, "budget: resolution coefficient (default: the paper's 1.15)")
flags.DEFINE_string("coefficients_from", None, "budget: a search.json whose best alpha, beta, "
                    "gamma to use")
flags.DEFINE_float("macs", None, "budget: multiply-adds (e.g. 6e8)")
flags.DEFINE_float("params", None, "budget: trainable parameters")
flags.DEFINE_float("activations", None, "budget: conv/dense output elements")
flags.DEFINE_float("latency_ms", None, "budget: median TFLite latency on this machine (ms)")
flags.DEFINE_integer("threads", 2, "budget: LiteRT threads for --latency_ms")
flags.DEFINE_integer("qat_epochs", 0, "export --quantize=int8: first fine-tune this many epochs "
                     "quantization-aware on --data (the remedy when PTQ loses accuracy)")


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

    key = (config.name.removeprefix("efficientnet-") if config.phi is None
           else {"efficientnet": "b0", "lite": "lite0"}.get(config.base) if config.phi == 0
           else None)
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
    import keras_effnet
    from keras_effnet.files import check_writable_dir, save_model

    if FLAGS.out:
        check_writable_dir(FLAGS.out)  # fail before spending time on the build
    config = next(_configs())
    shape = None if FLAGS.resolution is None else (FLAGS.resolution, FLAGS.resolution, 3)
    model = keras_effnet.build(config, num_classes=FLAGS.num_classes, input_shape=shape,
                               weights=FLAGS.weights, skip_head=FLAGS.skip_head)
    print(config.summary())
    if FLAGS.summary:
        model.summary()
    p = keras_effnet.profile(model)
    print(f"{model.name}: {p.trainable_params:,} trainable / {p.params:,} total parameters, "
          f"{p.macs / 1e9:.3f} B MACs at {p.resolution[0]}x{p.resolution[1]}")
    if FLAGS.out:
        save_model(model, FLAGS.out)
        print(f"saved {FLAGS.out}")


def _recipe():
    """The --recipe, with --learning_rate when given."""
    from keras_effnet.train import Recipe

    overrides = {} if FLAGS.learning_rate is None else {"learning_rate": FLAGS.learning_rate}
    return Recipe.named(FLAGS.recipe, **overrides)


def _quickstart_flags() -> None:
    """Fill the flags the user did not pass with QUICKSTART_DEFAULTS; check --data up front."""
    import glob
    import os

    from keras_effnet.data import parse_spec

    for name, value in QUICKSTART_DEFAULTS.items():
        if name == "learning_rate" and FLAGS.recipe != "short":
            continue  # tuned for the short recipe; --recipe=paper keeps its own
        if not FLAGS[name].present:
            FLAGS[name].value = value
    spec = parse_spec(FLAGS.data)  # a bad spec fails here, before anything is written
    if spec.kind == "folder" and not os.path.isdir(spec.location):
        raise FileNotFoundError(f"--data={FLAGS.data}: image folder not found: "
                                f"{spec.location!r}")
    if spec.kind == "tfrecord" and not (os.path.isdir(spec.location)
                                        or glob.glob(spec.location)):
        raise FileNotFoundError(f"--data={FLAGS.data}: no TFRecord files match "
                                f"{spec.location!r}")


def cmd_quickstart() -> None:
    """The main job (README's first command): build, train, export float32 and int8 TFLite and
    ONNX, verify them in their runtimes, report. Defaults (QUICKSTART_DEFAULTS): lite0 at 48 px,
    12 epochs of batch 64 on 1 600 synthetic images (400 held out), the short recipe at twice
    its learning rate; any flag overrides them,
    e.g. --data=folder:PATH, --phi=1 (--base=lite), --variant=lite2, --base_resolution=96
    (the φ = 0 size every model is scaled from), --epochs=30, --learning_rate,
    --strategy=mirrored --mixed_precision=auto on GPUs."""
    import os
    import time

    started = time.monotonic()
    _quickstart_flags()
    import keras_effnet
    from keras_effnet import export
    from keras_effnet.train import train

    out = FLAGS.out or os.path.join("runs", "quickstart")
    data = FLAGS.data
    config = (next(_configs()) if (FLAGS.variant or FLAGS.phi)
              else keras_effnet.scale("lite0", base_resolution=FLAGS.base_resolution))
    resolution = FLAGS.resolution or config.resolution
    recipe = _recipe()
    print(f"[quickstart] 1/4 build {config.name} at {resolution} px", flush=True)
    print(config.summary())
    print(f"[quickstart] 2/4 train on {data} for {FLAGS.epochs} epochs of batch "
          f"{FLAGS.batch_size}, {recipe.name} recipe ({recipe.optimizer}, learning rate "
          f"{recipe.learning_rate:g} per 256 images) -> {out}", flush=True)
    summary = train(config, data=data, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
                    recipe=recipe, strategy=FLAGS.strategy,
                    mixed_precision=FLAGS.mixed_precision, resolution=resolution, out=out,
                    seed=FLAGS.seed)
    trained = time.monotonic()
    model = keras_effnet.load_model(os.path.join(out, "model.keras"), compile=False)
    labels = summary["data"]["class_names"]
    print("[quickstart] 3/4 export float32 and int8 TFLite and ONNX, verify in their runtimes",
          flush=True)
    common = {"verify_data": data, "verify_count": 256, "labels": labels}
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
    finished = time.monotonic()
    print("[quickstart] 4/4 report")
    scores = summary["validation"]
    print(f"validation top-1 (Keras, {summary['data']['validation_size']} images): "
          f"{scores['accuracy']:.4f}" + (f", top-5 {scores['top5']:.4f}" if "top5" in scores
                                         else ""))
    print(report_table(reports))
    print(f"time: {finished - started:.0f} s ({trained - started:.0f} s building and training, "
          f"{finished - trained:.0f} s exporting and verifying)")
    print(f"artifacts in {out}: model.keras, model_float32.tflite, model_int8.tflite, "
          "model.onnx (each with a .json report), summary.json, history.csv, logs/")
    failed = [r["artifact"] for r in reports if not r["passed"]]
    if failed:
        raise RuntimeError(f"verification failed for {', '.join(failed)} (see the table); "
                           "those artifacts were not written")


def cmd_train() -> None:
    from keras_effnet.train import train

    summary = train(next(_configs()), data=FLAGS.data, epochs=FLAGS.epochs,
                    batch_size=FLAGS.batch_size, recipe=_recipe(),
                    strategy=FLAGS.strategy, mixed_precision=FLAGS.mixed_precision,
                    resolution=FLAGS.resolution, out=FLAGS.out or "runs/train", seed=FLAGS.seed,
                    num_classes=FLAGS.num_classes if FLAGS["num_classes"].present else None)
    scores = summary["validation"]
    print(f"validation: top-1 {scores['accuracy']:.4f}"
          + (f", top-5 {scores['top5']:.4f}" if "top5" in scores else "")
          + f" -> {FLAGS.out or 'runs/train'}/model.keras")


def cmd_eval() -> None:
    from keras_effnet.train import evaluate

    if not FLAGS.model:
        raise app.UsageError("effnet eval needs --model=PATH.keras")
    scores = evaluate(FLAGS.model, FLAGS.data, FLAGS.batch_size, resolution=FLAGS.resolution)
    print("  ".join(f"{name}: {value:.4f}" for name, value in scores.items()))


def _stage(text: str) -> None:
    print(f"[effnet export] {text}", flush=True)


def report_table(reports: list[dict]) -> str:
    """The verification table printed by export and quickstart."""
    rows = [f"{'artifact':<28} {'size (MB)':>9} {'max |Δ|':>9} {'top-1 agree':>11} "
            f"{'acc keras':>9} {'acc art.':>9} {'ms (1 img)':>10}  ok"]
    for r in reports:
        acc_k = f"{r['keras_accuracy']:.4f}" if "keras_accuracy" in r else "—"
        acc_a = f"{r['artifact_accuracy']:.4f}" if "artifact_accuracy" in r else "—"
        rows.append(f"{r['artifact']:<28} {r['size_bytes'] / 1e6:>9.2f} {r['max_abs_diff']:>9.2e} "
                    f"{r['top1_agreement']:>11.4f} {acc_k:>9} {acc_a:>9} "
                    f"{r['median_latency_ms']:>10.2f}  {'yes' if r['passed'] else 'NO'}")
    return "\n".join(rows)


def cmd_export() -> None:
    import os

    from keras_effnet.artifacts import load_model

    if not FLAGS.model:
        raise app.UsageError("effnet export needs --model=PATH.keras")
    out = FLAGS.out or os.path.splitext(FLAGS.model)[0] + {
        "tflite": f"_{FLAGS.quantize}.tflite", "onnx": ".onnx", "saved_model": "_saved_model"
    }[FLAGS.format]
    _stage(f"loading {FLAGS.model}")
    model = load_model(FLAGS.model, compile=False)
    from keras_effnet import export

    verify_data = FLAGS.verify_data or (FLAGS.calibration if FLAGS.quantize == "int8"
                                        else FLAGS.data)
    if FLAGS.format == "saved_model":
        _stage(f"writing SavedModel {out}")
        export.to_saved_model(model, out)
        _stage("done")
        return
    _stage(f"converting to {FLAGS.format}"
           + (f" ({FLAGS.quantize})" if FLAGS.format == "tflite" else f" (opset {FLAGS.opset})")
           + f", then verifying on {verify_data}")
    if FLAGS.qat_epochs:
        if FLAGS.format != "tflite" or FLAGS.quantize != "int8":
            raise app.UsageError("--qat_epochs needs --format=tflite --quantize=int8")
        _stage(f"quantization-aware fine-tuning, {FLAGS.qat_epochs} epochs on {FLAGS.data}")
        model = export.fine_tune(model, FLAGS.data, epochs=FLAGS.qat_epochs,
                                 batch_size=FLAGS.batch_size, seed=FLAGS.seed)
    if FLAGS.format == "tflite":
        report = export.to_tflite(model, out, FLAGS.quantize, representative_data=FLAGS.calibration,
                                  io_dtype=FLAGS.io_dtype, verify_data=verify_data)
    else:
        report = export.to_onnx(model, out, FLAGS.opset, verify_data=verify_data)
    print(report_table([report]))
    _stage(f"wrote {out} and {out}.json")


def cmd_search() -> None:
    from keras_effnet.search import coefficients

    if not FLAGS["data"].present:  # a search ranks candidates on data: never invent it
        raise app.UsageError("effnet search needs --data=SPEC (folder:PATH, tfrecord:GLOB, or "
                             "synthetic for a demo)")
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
        strategy=FLAGS.strategy, sampler=FLAGS.sampler)
    best = result["best"]
    print(f"best: alpha={best['alpha']:g} beta={best['beta']:g} gamma={best['gamma']:g} "
          f"({best['role']}), val top-1 {best['val_top1_mean']:.3f} ± {best['val_top1_std']:.3f}"
          f"; {sum(r['tied_with_best'] for r in result['trials']) - 1} other(s) within the "
          "seed noise")
    _stage(f"wrote {FLAGS.out or 'runs/search'}/search.json, .md and .png")


def cmd_budget() -> None:
    import json

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
            "train": cmd_train, "eval": cmd_eval, "export": cmd_export, "search": cmd_search,
            "budget": cmd_budget}


def main(argv: list[str]) -> None:
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"usage: effnet {{{'|'.join(COMMANDS)}}} [--flags]; "
                             f"got {' '.join(argv[1:]) or 'no command'}")
    try:
        COMMANDS[argv[1]]()
    except (ValueError, TypeError, FileNotFoundError, PermissionError, RuntimeError) as err:
        print(f"effnet {argv[1]}: error: {err}", file=sys.stderr)
        sys.exit(2)


def run() -> None:
    # absl's --help lists only __main__'s flags (none: they live here) and exits 1.
    if {"--help", "-?", "--helpshort"} & set(sys.argv[1:]):
        print((__doc__ or "") + "\n" + FLAGS.module_help(sys.modules[__name__]))
        sys.exit(0)
    app.run(main)


if __name__ == "__main__":
    run()
