"""Inference latency, size and export time: Keras vs TFLite (fp32/fp16/dynamic/int8) vs ONNX.

For each variant (random weights: latency does not depend on them) the script builds
`keras_effnet.build(variant, input_shape=(r, r, 3))`, times Keras (a `tf.function` of
`model(x, training=False)`, batch 1 and 32, TF's default threads), exports every artifact with
`keras_effnet.export.to_tflite` / `to_onnx` (wall time of the whole verified export, file size)
and times each artifact in its real runtime with 1 and 2 threads. keras.applications
EfficientNet (weights=None) at the same resolution goes through the same steps in the same run,
so ours/theirs ratios are not skewed by machine load (EfficientNetV2 too: `--variants=v2-b0
--keras_applications=v2-b0` measures EfficientNetV2B0). Timings of all models for one
(mode, threads) are interleaved run by run (A, B, C, A, B, C, ...) for the same reason, and
reported as the median (typical) and the minimum (least disturbed by other processes).
Writes `results/latency.md`, `.json` and `latency.png` (latency vs MACs, log axes).
`--shared_weights` gives ours the keras.applications twin's weights (copied by layer name: the
same function) and `--logits` drops the softmax from every model, so that each artifact's SQNR
against its Keras model (a column of the artifacts table) compares the two graphs, not two
random initialisations squashed to a near-uniform softmax.

    python benchmarks/latency.py --variants=lite0,b0 --resolution=224 --keras_applications=b0
"""

import os
import statistics
import sys
import tempfile
import time
import traceback

from absl import app, flags
from common import check_modes, markdown_table, run, write_results

MODES = ("keras_b1", "keras_b32", "tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8",
         "onnx")
TFLITE_QUANTIZE = {"tflite_fp32": "none", "tflite_fp16": "float16",
                   "tflite_dynamic": "dynamic", "tflite_int8": "int8"}
KERAS_BATCH = {"keras_b1": 1, "keras_b32": 32}

FLAGS = flags.FLAGS
flags.DEFINE_list("variants", ["lite0", "b0"], "keras_effnet variants to measure")
flags.DEFINE_integer("resolution", None, "input size for every model (default: each variant's "
                     "own; the headline run forces 224)")
flags.DEFINE_list("modes", list(MODES), f"runtimes to measure, from: {', '.join(MODES)}")
flags.DEFINE_list("threads", ["1", "2"], "interpreter / onnxruntime intra-op thread counts")
flags.DEFINE_list("keras_applications", ["b0"], "keras.applications EfficientNet variants "
                  "(b0..b7, v2-b0..v2-b3, v2-s, v2-m, v2-l; weights=None) measured beside ours "
                  "at the same resolution; empty: none")
flags.DEFINE_bool("shared_weights", False, "ours takes the weights of the keras.applications "
                  "model of the same variant (by layer name), so both compute the same function")
flags.DEFINE_bool("logits", False, "build every model without its softmax "
                  "(classifier_activation=None): SQNR then measures the logits")
flags.DEFINE_integer("runs", 60, "timed single-image runs per model and mode (median and min "
                     "reported)")
flags.DEFINE_integer("batch_runs", 6, "timed runs of the Keras batch-32 call")
flags.DEFINE_integer("warmup", 3, "untimed runs before timing")
flags.DEFINE_integer("calibration_images", 100, "int8 representative images (to_tflite's "
                     "default calibration_steps)")
flags.DEFINE_integer("verify_images", 64, "images each export verifies on (to_tflite's default)")
flags.DEFINE_string("calibration", "random", "int8 calibration data: 'random' (seeded random "
                    "pixels) or a data spec such as 'synthetic'")
flags.DEFINE_string("artifacts", None, "keep exported files here (default: a temporary folder)")
flags.DEFINE_string("results", "benchmarks/results", "where the tables and plot go")
flags.DEFINE_bool("plot", True, "write latency.png")

# keras.applications' constructor of each variant --keras_applications accepts
KERAS_APPLICATIONS = {**{f"b{i}": f"EfficientNetB{i}" for i in range(8)},
                      **{f"v2-{v}": f"EfficientNetV2{v.upper()}"
                         for v in ("b0", "b1", "b2", "b3", "s", "m", "l")}}
# Random weights make a quantized model's top-1 agree with Keras only by chance: record the
# agreement, do not fail on it. Float artifacts keep the package's strict thresholds.
QUANTIZED_THRESHOLDS = {"min_decisive_agreement": None, "min_sqnr_db": None,
                        "max_accuracy_drop": None, "min_decisive_images": None}


def progress(message):
    print(f"[latency {time.strftime('%H:%M:%S')}] {message}", flush=True)


def check_flags():
    check_modes(FLAGS.modes, MODES)
    threads = []
    for text in FLAGS.threads:
        if not text.isdigit() or int(text) < 1:
            raise app.UsageError(f"--threads={','.join(FLAGS.threads)}: each must be an integer "
                                 "≥ 1")
        threads.append(int(text))
    from keras_effnet import VARIANTS

    unknown = [v for v in FLAGS.variants if v not in VARIANTS]
    if unknown:
        raise app.UsageError(f"--variants: unknown {unknown}; accepted: {', '.join(VARIANTS)}")
    apps = [v for v in FLAGS.keras_applications if v not in KERAS_APPLICATIONS]
    if apps:
        raise app.UsageError(f"--keras_applications: unknown {apps}; accepted: "
                             f"{', '.join(KERAS_APPLICATIONS)}")
    if FLAGS.resolution is not None and FLAGS.resolution < 32:
        raise app.UsageError(f"--resolution={FLAGS.resolution}; accepted: ≥ 32")
    if min(FLAGS.runs, FLAGS.batch_runs) < 1:
        raise app.UsageError("--runs and --batch_runs must be ≥ 1")
    return threads


def models_to_measure():
    """(label, source, variant, resolution, builder) for ours and keras.applications'."""
    import keras

    import keras_effnet

    specs, theirs = [], {}
    activation = None if FLAGS.logits else "softmax"

    def reference(variant, r):  # one keras.applications model per variant, also ours' source
        if variant not in theirs:
            keras.utils.set_random_seed(0)
            constructor = getattr(keras.applications, KERAS_APPLICATIONS[variant])
            theirs[variant] = constructor(weights=None, input_shape=(r, r, 3),
                                          classifier_activation=activation)
        return theirs[variant]

    def ours(variant, r):
        model = keras_effnet.build(variant, input_shape=(r, r, 3),
                                   classifier_activation=activation)
        if FLAGS.shared_weights and variant in FLAGS.keras_applications:
            source = reference(variant, r)
            for layer in model.layers:
                if layer.weights:
                    layer.set_weights(source.get_layer(layer.name).get_weights())
        return model

    for variant in FLAGS.variants:
        r = FLAGS.resolution or keras_effnet.scale(variant).resolution
        specs.append((variant, "keras_effnet", variant, r, lambda v=variant, r=r: ours(v, r)))
    for variant in FLAGS.keras_applications:
        r = FLAGS.resolution or keras_effnet.scale(variant).resolution
        specs.append((f"keras.applications {variant.upper()}", "keras.applications", variant, r,
                      lambda v=variant, r=r: reference(v, r)))
    return specs


def calibration_data(resolution):
    import numpy as np

    if FLAGS.calibration == "random":
        rng = np.random.default_rng(0)
        return rng.uniform(0, 255, (FLAGS.calibration_images, resolution, resolution, 3)
                           ).astype("float32")
    return FLAGS.calibration


def export(model, mode, folder, stem, calibration):
    """Export one artifact with the package's verified exporters; return (path, row fields).
    `model` is traced once for all its artifacts (`keras_effnet.export.traced`)."""
    from keras_effnet.export import VerificationError, to_onnx, to_tflite

    started = time.perf_counter()
    fields = {}
    try:
        if mode == "onnx":
            path = os.path.join(folder, f"{stem}.onnx")
            report = to_onnx(model, path, verify_count=FLAGS.verify_images)
        else:
            quantize = TFLITE_QUANTIZE[mode]
            path = os.path.join(folder, f"{stem}_{quantize}.tflite")
            quantized = quantize in ("dynamic", "int8")
            report = to_tflite(model, path, quantize=quantize,
                               representative_data=calibration if quantize == "int8" else None,
                               calibration_steps=FLAGS.calibration_images,
                               verify_count=FLAGS.verify_images,
                               thresholds=QUANTIZED_THRESHOLDS if quantized else None)
    except VerificationError as error:  # converted, but disagrees: no artifact to time
        fields.update(error=f"verification failed: {error}",
                      top1_agreement=error.report.get("top1_agreement"),
                      max_abs_diff=error.report.get("max_abs_diff"))
        return None, fields
    except Exception as error:  # noqa: BLE001 — record any converter failure, keep going
        first = str(error).strip().splitlines()
        fields["error"] = f"{type(error).__name__}: {first[0][:300] if first else ''}"
        traceback.print_exc(limit=3)
        return None, fields
    fields.update(export_s=round(time.perf_counter() - started, 2),
                  size_bytes=os.path.getsize(path),
                  top1_agreement=report.get("top1_agreement"),
                  max_abs_diff=report.get("max_abs_diff"), sqnr_db=report.get("sqnr_db"))
    return path, fields


def interleaved_times(callables, runs, warmup):
    """(median, min) ms of each callable, timed in turn run by run so load bursts from other
    processes hit all of them alike."""
    samples = [[] for _ in callables]
    for fn in callables:
        for _ in range(warmup):
            fn()
    for _ in range(runs):
        for fn, times in zip(callables, samples):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1000)
    return [(statistics.median(times), min(times)) for times in samples]


def keras_caller(model, batch, resolution):
    import numpy as np
    import tensorflow as tf

    images = np.random.default_rng(1).uniform(0, 255, (batch, resolution, resolution, 3))
    x = tf.constant(images.astype("float32"))
    forward = tf.function(lambda t: model(t, training=False), jit_compile=False)
    return lambda: forward(x).numpy()


def runner_caller(mode, path, threads, resolution):
    import numpy as np
    from keras_effnet.export.runtime import ONNXRunner, TFLiteRunner

    runner = (ONNXRunner if mode == "onnx" else TFLiteRunner)(path, num_threads=threads)
    image = np.random.default_rng(1).uniform(0, 255, (resolution, resolution, 3)).astype("float32")
    return lambda: runner.run_one(image)


def plot(rows, path):
    """Left: latency vs MACs, one series per mode (log axes). Right: the same medians as bars per
    model, readable even when the models' MACs coincide (lite0 and b0 at 224 px)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    # The fewest threads: on a shared machine multi-threaded runtimes suffer most from load.
    few = min((r["threads"] for r in rows if r.get("threads")), default=None)
    timed = [r for r in rows if r.get("latency_ms") and r.get("threads") in (None, few)]
    fig, (ax, bars) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, mode in enumerate(MODES):
        for source, style in (("keras_effnet", {"marker": "o", "linestyle": "-"}),
                              ("keras.applications", {"marker": "s", "linestyle": "none",
                                                      "markerfacecolor": "none"})):
            points = sorted((r["macs"], r["latency_ms"] / r["batch"]) for r in timed
                            if r["mode"] == mode and r["source"] == source)
            if not points:
                continue
            label = mode + (" (per image)" if mode == "keras_b32" else "")
            if source != "keras_effnet":
                label += " — keras.applications"
            ax.plot([p[0] / 1e6 for p in points], [p[1] for p in points],
                    color=colors[i % len(colors)], label=label, **style)
    ax.set_xscale("log")
    ax.set_yscale("log")
    macs = sorted({r["macs"] / 1e6 for r in timed})
    if macs and macs[-1] / macs[0] < 2:  # e.g. lite0 and b0 at 224 px: nearly the same MACs
        ax.set_xlim(macs[0] / 1.5, macs[-1] * 1.5)
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(plain)
    ax.tick_params(which="minor", labelsize=6)
    ax.set_xlabel("MACs (millions)")
    ax.set_ylabel("latency per image (ms, median)")
    ax.set_title(f"Latency vs MACs (artifacts: {few} thread(s); Keras: TF default)",
                 fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, loc="upper left")

    models = list(dict.fromkeys(r["model"] for r in timed))
    modes = [m for m in MODES if any(r["mode"] == m for r in timed)]
    height = 0.8 / max(1, len(models))
    for j, model in enumerate(models):
        values = [next((r["latency_ms"] / r["batch"] for r in timed
                        if r["model"] == model and r["mode"] == m), 0) for m in modes]
        bars.barh([k + j * height for k in range(len(modes))], values, height, label=model)
    bars.set_yticks([k + 0.4 - height / 2 for k in range(len(modes))], modes, fontsize=8)
    bars.invert_yaxis()
    bars.set_xlabel("latency per image (ms, median)")
    bars.set_title("Per model and mode", fontsize=9)
    bars.grid(True, axis="x", alpha=0.3)
    bars.legend(fontsize=7)
    fig.tight_layout()
    from keras_effnet.files import atomic_path

    with atomic_path(path) as staged:
        fig.savefig(staged, format="png", dpi=110)
    plt.close(fig)


def ratio(a, b):
    return round(a / b, 3) if a and b else None


def pair(row):
    """'median / min' ms of a row; None when it was not timed."""
    if not row.get("latency_ms"):
        return None
    def fmt(ms):
        return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"

    return f"{fmt(row['latency_ms'])} / {fmt(row['latency_min_ms'])}"


def _pair_db(ours, theirs):
    """'ours / theirs' SQNR of two artifacts against their Keras models; None for Keras rows."""
    if ours.get("sqnr_db") is None or theirs.get("sqnr_db") is None:
        return None
    return f"{ours['sqnr_db']:.1f} / {theirs['sqnr_db']:.1f}"


def summarize(rows, threads):
    def mb(value):
        return round(value / 1e6, 2) if value else None

    parts = []
    keras_rows = [r for r in rows if r["mode"] in KERAS_BATCH]
    if keras_rows:
        parts.append("### Keras (tf.function, jit_compile=False, TF default threads)\n\n" +
                     markdown_table([{**r, "MMACs": round(r["macs"] / 1e6, 1),
                                      "ms / batch (median / min)": pair(r),
                                      "images/s": r.get("images_per_s")}
                                     for r in keras_rows],
                                    ["model", "resolution", "MMACs", "batch",
                                     "ms / batch (median / min)", "images/s"]))
    artifact_modes = [m for m in MODES if m not in KERAS_BATCH]
    table = []
    for model in dict.fromkeys(r["model"] for r in rows):
        for mode in artifact_modes:
            found = [r for r in rows if r["model"] == model and r["mode"] == mode]
            if not found:
                continue
            line = {"model": model, "mode": mode, "size MB": mb(found[0].get("size_bytes")),
                    "trace s": found[0].get("trace_s"), "export s": found[0].get("export_s"),
                    "top-1 vs Keras": found[0].get("top1_agreement"),
                    "SQNR dB": found[0].get("sqnr_db")}
            for r in found:
                if r.get("threads"):
                    line[f"ms, {r['threads']} thr (median / min)"] = pair(r)
                    line[f"img/s, {r['threads']} thr"] = r.get("images_per_s")
            table.append(line)
    if table:
        columns = ["model", "mode", "size MB", "trace s", "export s"]
        columns += [f"ms, {t} thr (median / min)" for t in threads]
        columns += [f"img/s, {t} thr" for t in threads]
        parts.append("### Exported artifacts (single image; trace s = the one SavedModel "
                     "export per model, export s = verified to_tflite / to_onnx from it)\n\n" + markdown_table(table, columns + ["top-1 vs Keras", "SQNR dB"]))

    def lookup(model, mode, t):
        for r in rows:
            if r["model"] == model and r["mode"] == mode and r.get("threads") == t:
                return r
        return {}

    quant = []
    for model in dict.fromkeys(r["model"] for r in rows):
        fp32 = [r for r in rows if r["model"] == model and r["mode"] == "tflite_fp32"]
        int8 = [r for r in rows if r["model"] == model and r["mode"] == "tflite_int8"]
        if not fp32 or not int8:
            continue
        size = ratio(int8[0].get("size_bytes"), fp32[0].get("size_bytes"))
        for t in threads:
            lat = ratio(lookup(model, "tflite_int8", t).get("latency_ms"),
                        lookup(model, "tflite_fp32", t).get("latency_ms"))
            best = ratio(lookup(model, "tflite_int8", t).get("latency_min_ms"),
                         lookup(model, "tflite_fp32", t).get("latency_min_ms"))
            quant.append({"model": model, "threads": t, "int8/fp32 latency": lat,
                          "(min)": best, "int8/fp32 size": size,
                          "latency ≤ 0.46×": None if lat is None else ("yes" if lat <= 0.46
                                                                        else "no"),
                          "size ≤ 0.3×": None if size is None else ("yes" if size <= 0.3
                                                                     else "no")})
    if quant:
        parts.append("### int8 vs fp32 TFLite (targets: latency ≤ 0.46×, size ≤ 0.3×)\n\n" +
                     markdown_table(quant, ["model", "threads", "int8/fp32 latency", "(min)",
                                            "int8/fp32 size", "latency ≤ 0.46×", "size ≤ 0.3×"]))

    versus = []
    for theirs in dict.fromkeys(r["model"] for r in rows if r["source"] == "keras.applications"):
        sample = next(r for r in rows if r["model"] == theirs)
        ours = next((r["model"] for r in rows if r["source"] == "keras_effnet"
                     and r["variant"] == sample["variant"]
                     and r["resolution"] == sample["resolution"]), None)
        if ours is None:
            continue
        for r in rows:
            if r["model"] != ours:
                continue
            other = lookup(theirs, r["mode"], r.get("threads"))
            lat = ratio(r.get("latency_ms"), other.get("latency_ms"))
            best = ratio(r.get("latency_min_ms"), other.get("latency_min_ms"))
            versus.append({"ours": ours, "theirs": theirs, "mode": r["mode"],
                           "threads": r.get("threads") or "TF default",
                           "ours ms": pair(r), "theirs ms": pair(other),
                           "ours/theirs latency": lat,
                           "ours/theirs throughput": ratio(1, lat),
                           "(min)": ratio(1, best),
                           "ours/theirs size": ratio(r.get("size_bytes"),
                                                     other.get("size_bytes")),
                           "SQNR dB ours / theirs": _pair_db(r, other)})
    if versus:
        parts.append("### Ours vs keras.applications (same resolution, same run; target: "
                     "throughput ≥ 1.0×)\n\n" +
                     markdown_table(versus, ["ours", "theirs", "mode", "threads",
                                             "ours ms", "theirs ms", "ours/theirs latency",
                                             "ours/theirs throughput", "(min)",
                                             "ours/theirs size", "SQNR dB ours / theirs"]))
    errors = [r for r in rows if r.get("error")]
    if errors:
        seen = {}
        for r in errors:
            seen.setdefault((r["model"], r["mode"]), r["error"])
        parts.append("### Failures (recorded, not fatal)\n\n" + markdown_table(
            [{"model": m, "mode": mode, "error": e.replace("|", "\\|").replace("\n", " ")}
             for (m, mode), e in seen.items()], ["model", "mode", "error"]))
    return "\n\n".join(parts)


def main(argv):
    del argv
    threads = check_flags()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras_effnet
    from keras_effnet.export import traced

    work = FLAGS.artifacts or tempfile.mkdtemp(prefix="effnet-latency-")
    os.makedirs(work, exist_ok=True)
    started, load_before = time.time(), os.getloadavg()
    models, rows = [], []
    for label, source, variant, r, builder in models_to_measure():
        progress(f"{label} @ {r}px: build")
        model = builder()
        prof = keras_effnet.profile(model)
        base = {"model": label, "source": source, "variant": variant, "resolution": r,
                "params": prof.params, "macs": prof.macs}
        weight_bytes = sum(int(w.numpy().nbytes) for w in model.weights)
        calibration = calibration_data(r) if "tflite_int8" in FLAGS.modes else None
        entry = {"base": base, "model": model, "artifacts": {}}
        started_trace = time.perf_counter()
        graph = traced(model) if set(FLAGS.modes) - set(KERAS_BATCH) else None
        base["trace_s"] = round(time.perf_counter() - started_trace, 2)
        for mode in FLAGS.modes:
            if mode in KERAS_BATCH:
                entry["artifacts"][mode] = None
                rows_for = [{**base, "mode": mode, "threads": None, "batch": KERAS_BATCH[mode],
                             "size_bytes": weight_bytes}]
            else:
                progress(f"{label} @ {r}px: export {mode}")
                stem = f"{source.replace('.', '_')}_{variant}_{r}"
                path, fields = export(graph, mode, work, stem, calibration)
                entry["artifacts"][mode] = path
                progress(f"{label} @ {r}px: {mode} "
                         + (f"{fields['size_bytes'] / 1e6:.2f} MB in {fields['export_s']} s"
                            if path else f"FAILED: {fields['error'][:200]}"))
                rows_for = [{**base, "mode": mode, "threads": t, "batch": 1, **fields}
                            for t in threads]
            rows.extend(rows_for)
        if graph is not None:
            graph.close()
        models.append(entry)

    for mode in FLAGS.modes:
        for t in ([None] if mode in KERAS_BATCH else threads):
            callers, targets = [], []
            for entry in models:
                base = entry["base"]
                row = next(x for x in rows if x["model"] == base["model"] and x["mode"] == mode
                           and x["threads"] == t)
                if mode in KERAS_BATCH:
                    callers.append(keras_caller(entry["model"], KERAS_BATCH[mode],
                                                base["resolution"]))
                elif entry["artifacts"][mode]:
                    callers.append(runner_caller(mode, entry["artifacts"][mode], t,
                                                 base["resolution"]))
                else:
                    continue
                targets.append(row)
            if not callers:
                continue
            progress(f"time {mode}" + (f" with {t} thread(s)" if t else "") + " for "
                     + ", ".join(row["model"] for row in targets))
            runs = FLAGS.batch_runs if mode == "keras_b32" else FLAGS.runs
            for row, (ms, best) in zip(targets, interleaved_times(callers, runs, FLAGS.warmup)):
                row["latency_ms"], row["latency_min_ms"] = round(ms, 3), round(best, 3)
                row["images_per_s"] = round(1000 * row["batch"] / ms, 1)
                progress(f"  {row['model']}: {ms:.2f} ms median, {best:.2f} ms min per batch "
                         f"of {row['batch']}")

    markdown = summarize(rows, threads)
    markdown += ("\n\nRandom weights" + (" (ours: the keras.applications model's of the "
                                          "same variant, copied by layer name)"
                                          if FLAGS.shared_weights else "")
                 + ("; every model outputs logits (SQNR of the logits)" if FLAGS.logits else "")
                 + f"; int8 calibrated on {FLAGS.calibration_images} "
                 f"{FLAGS.calibration} images; each export verified on {FLAGS.verify_images} "
                 f"images. Medians of {FLAGS.runs} single-image runs "
                 + (f"({FLAGS.batch_runs} for batch 32) " if "keras_b32" in FLAGS.modes else "")
                 + f"after {FLAGS.warmup} warm-up runs, models interleaved run by run; "
                 "ratios from medians, (min) from the fastest runs. Load average (1, 5, 15 min) "
                 f"at the "
                 f"start {', '.join(f'{x:.2f}' for x in load_before)}, at the end "
                 f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}. Total "
                 f"{time.time() - started:.0f} s.")
    os.makedirs(FLAGS.results, exist_ok=True)
    if FLAGS.plot:
        png = os.path.join(FLAGS.results, "latency.png")
        plot(rows, png)
        markdown += "\n\n![latency vs MACs](latency.png)"
        progress(f"wrote {png}")
    write_results(FLAGS.results, "latency", rows, markdown,
                  flags={"variants": FLAGS.variants, "resolution": FLAGS.resolution,
                         "modes": FLAGS.modes, "threads": threads,
                         "keras_applications": FLAGS.keras_applications, "runs": FLAGS.runs,
                         "shared_weights": FLAGS.shared_weights, "logits": FLAGS.logits,
                         "batch_runs": FLAGS.batch_runs, "calibration": FLAGS.calibration,
                         "calibration_images": FLAGS.calibration_images,
                         "verify_images": FLAGS.verify_images},
                  load_average={"start": load_before, "end": os.getloadavg()},
                  argv=sys.argv[1:])


if __name__ == "__main__":
    run(main)
