"""Peak resident memory: Keras inference, one Keras train step, the TFLite interpreter, and
the ONNX conversion (ours against tf2onnx's `from_graph_def`, the anchor).

Peak RSS is per process and only ever grows, so every measurement runs in its own fresh
subprocess: the script re-invokes itself with the internal `--measure=<kind>` flag and reads
one JSON line back. The peak is the kernel's high-water mark of the process's own address
space (`VmHWM` in /proc/self/status; `ru_maxrss` elsewhere, which on Linux can inherit the
parent's peak across fork+exec). Baselines (a process that only imported TensorFlow, and one
that only imported the LiteRT interpreter) make the increment of each workload visible.
The TFLite rows run in a process without TensorFlow, as on a device.
Writes `results/<--table>.md` and `.json`.

    python benchmarks/memory.py --variants=lite0,b0 --resolution=224 --batch_size=16
    python benchmarks/memory.py --variants=v2-b0,v2-s --kinds=onnx_export,onnx_export_tf2onnx \
        --jobs=1 --table=memory_onnx
"""

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags
from common import markdown_table, run, write_results

KINDS = ("keras_infer", "keras_train", "tflite_fp32", "tflite_int8", "onnx_export",
         "onnx_export_tf2onnx")
BASELINES = {"tensorflow": "baseline_tf", "ai_edge_litert": "baseline_litert"}
RUNTIME = {"keras_infer": "tensorflow", "keras_train": "tensorflow",
           "tflite_fp32": "ai_edge_litert", "tflite_int8": "ai_edge_litert",
           "onnx_export": "tensorflow", "onnx_export_tf2onnx": "tensorflow"}
QUANTIZE = {"tflite_fp32": "none", "tflite_int8": "int8"}
MARKER = "MEASURE-JSON "

FLAGS = flags.FLAGS
flags.DEFINE_list("variants", ["lite0", "b0"], "keras_effnet variants to measure")
flags.DEFINE_integer("resolution", 224, "input size of every model")
flags.DEFINE_integer("batch_size", 16, "batch size of the measured train step")
flags.DEFINE_list("kinds", list(KINDS), f"measurements, from: {', '.join(KINDS)}")
flags.DEFINE_integer("runs", 5, "inferences (or train steps, at most 2) per measurement")
flags.DEFINE_integer("threads", 2, "TFLite interpreter threads")
flags.DEFINE_integer("jobs", 2, "subprocesses run at once (peaks are per process, so this "
                     "changes wall time only)")
flags.DEFINE_string("artifacts", None, "folder of .tflite files to reuse (benchmarks/latency.py "
                    "--artifacts names them alike) and to keep new exports in; default: temporary")
flags.DEFINE_string("results", "benchmarks/results", "where the tables go")
flags.DEFINE_string("table", "memory", "name of the written table (<results>/<table>.md)")
# Internal: one measurement in this (fresh) process; prints one JSON line and exits.
flags.DEFINE_enum("measure", None, [*KINDS, *BASELINES.values(), "export"],
                  "internal: run one measurement in this process and print it as JSON")
flags.DEFINE_string("variant", None, "internal: the variant --measure works on")
flags.DEFINE_string("model_path", None, "internal: the .tflite file --measure runs")


def peak_rss_mb():
    """High-water mark of this process's resident memory, in MB (10^6 bytes)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


def current_rss_mb():
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def artifact_path(folder, variant, resolution, kind):
    # The name benchmarks/latency.py gives the same export, so its --artifacts folder is reusable.
    return os.path.join(folder, f"keras_effnet_{variant}_{resolution}_{QUANTIZE[kind]}.tflite")


# ---- in the child process -------------------------------------------------------------------

def measure(kind):
    """Run one workload in this process; return what to report (peak read at the very end)."""
    import numpy as np

    started = time.perf_counter()
    r, runs = FLAGS.resolution, max(1, FLAGS.runs)
    info = {}
    if kind == "baseline_tf":
        import tensorflow  # noqa: F401 — the import itself is what this baseline measures
    elif kind == "baseline_litert":
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    elif kind in ("tflite_fp32", "tflite_int8"):
        from keras_effnet.export.runtime import TFLiteRunner

        runner = TFLiteRunner(FLAGS.model_path, num_threads=FLAGS.threads)
        image = np.random.default_rng(0).uniform(0, 255, (r, r, 3)).astype("float32")
        for _ in range(runs):
            runner.run_one(image)
        info["tensorflow_imported"] = "tensorflow" in sys.modules
        info["size_mb"] = round(os.path.getsize(FLAGS.model_path) / 1e6, 2)
    else:
        import keras
        import tensorflow as tf

        import keras_effnet

        model = keras_effnet.build(FLAGS.variant, input_shape=(r, r, 3))
        rng = np.random.default_rng(0)
        if kind == "keras_infer":
            x = tf.constant(rng.uniform(0, 255, (1, r, r, 3)).astype("float32"))
            forward = tf.function(lambda t: model(t, training=False), jit_compile=False)
            for _ in range(runs):
                forward(x).numpy()
            info["batch"] = 1
        elif kind == "keras_train":
            batch = FLAGS.batch_size
            x = rng.uniform(0, 255, (batch, r, r, 3)).astype("float32")
            y = keras.utils.to_categorical(rng.integers(0, 1000, batch), 1000)
            model.compile(optimizer=keras.optimizers.Adam(1e-3),
                          loss="categorical_crossentropy", jit_compile=False)
            # Adam's slots created eagerly: otherwise they are created inside the first trace,
            # which tf.function then traces a second time (same memory, twice the wait).
            model.optimizer.build(model.trainable_variables)
            for _ in range(min(runs, 2)):  # the first step traces; the second is steady state
                model.train_on_batch(x, y)
            info["batch"] = batch
        elif kind in ("onnx_export", "onnx_export_tf2onnx"):
            # The conversion only (trace, freeze, convert): verification would add onnxruntime.
            from keras_effnet.export import onnx_model, traced

            with traced(model) as graph:
                if kind == "onnx_export":
                    proto = onnx_model(graph)
                else:
                    import tf2onnx

                    graph_def, image, outputs = graph.frozen_graph()
                    proto, _ = tf2onnx.convert.from_graph_def(
                        graph_def, input_names=[image], output_names=[t for t, _ in outputs],
                        opset=17)
            info["size_mb"] = round(proto.ByteSize() / 1e6, 2)
            info["weights_mb"] = round(model.count_params() * 4 / 1e6, 2)
        elif kind == "export":
            from keras_effnet.export import to_tflite

            calibration = rng.uniform(0, 255, (16, r, r, 3)).astype("float32")
            for k in ("tflite_fp32", "tflite_int8"):
                path = artifact_path(FLAGS.artifacts, FLAGS.variant, r, k)
                if not os.path.exists(path):
                    quantize = QUANTIZE[k]
                    to_tflite(model, path, quantize=quantize, verify_count=8,
                              representative_data=calibration if quantize == "int8" else None,
                              thresholds={"min_decisive_agreement": None, "min_sqnr_db": None,
                                          "min_decisive_images": None}
                              if quantize == "int8" else None)
    info.update(kind=kind, peak_rss_mb=round(peak_rss_mb(), 1), rss_mb=round(current_rss_mb(), 1),
                seconds=round(time.perf_counter() - started, 1))
    return info


# ---- in the parent process ------------------------------------------------------------------

def run_child(kind, variant=None, model_path=None, artifacts=None):
    command = [sys.executable, os.path.abspath(__file__), f"--measure={kind}",
               f"--resolution={FLAGS.resolution}", f"--batch_size={FLAGS.batch_size}",
               f"--runs={FLAGS.runs}", f"--threads={FLAGS.threads}"]
    command += [f"--variant={variant}"] if variant else []
    command += [f"--model_path={model_path}"] if model_path else []
    command += [f"--artifacts={artifacts}"] if artifacts else []
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env)
    for line in done.stdout.splitlines():
        if line.startswith(MARKER):
            result = json.loads(line[len(MARKER):])
            progress(f"{variant or 'baseline'} {kind}: peak {result['peak_rss_mb']} MB "
                     f"({result['seconds']} s)")
            return result
    raise RuntimeError(f"measurement {kind} ({variant or 'no model'}) exited {done.returncode} "
                       f"without a result:\n{done.stderr[-3000:]}")


def progress(message):
    print(f"[memory {time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv):
    del argv
    if FLAGS.measure:
        print(MARKER + json.dumps(measure(FLAGS.measure)), flush=True)
        return
    bad = [k for k in FLAGS.kinds if k not in KINDS]
    if bad or not FLAGS.kinds:
        raise app.UsageError(f"--kinds: unknown {bad}; accepted: {', '.join(KINDS)}")
    from keras_effnet import VARIANTS

    unknown = [v for v in FLAGS.variants if v not in VARIANTS]
    if unknown:
        raise app.UsageError(f"--variants: unknown {unknown}; accepted: {', '.join(VARIANTS)}")
    if FLAGS.resolution < 32 or FLAGS.batch_size < 1 or FLAGS.jobs < 1:
        raise app.UsageError("--resolution must be ≥ 32, --batch_size and --jobs ≥ 1")
    if not FLAGS.table or os.sep in FLAGS.table:
        raise app.UsageError(f"--table={FLAGS.table!r}: a file name without folders")
    started = time.time()
    folder = os.path.abspath(FLAGS.artifacts or tempfile.mkdtemp(prefix="effnet-memory-"))
    os.makedirs(folder, exist_ok=True)
    r = FLAGS.resolution

    tflite_kinds = [k for k in FLAGS.kinds if k in QUANTIZE]
    to_export = []
    for variant in FLAGS.variants:
        missing = [k for k in tflite_kinds if not os.path.exists(artifact_path(folder, variant,
                                                                               r, k))]
        if missing:
            progress(f"{variant} @ {r}px: export {', '.join(missing)} (subprocess)")
            to_export.append(variant)
        elif tflite_kinds:
            progress(f"{variant} @ {r}px: reuse {', '.join(tflite_kinds)} from {folder}")

    runtimes = sorted({RUNTIME[k] for k in FLAGS.kinds})
    results = {}
    with concurrent.futures.ThreadPoolExecutor(FLAGS.jobs) as pool:
        # Exports first (the longest jobs), then every measurement that needs no artifact;
        # a variant's TFLite measurements are queued once its export is done.
        exports = {v: pool.submit(run_child, "export", v, artifacts=folder) for v in to_export}
        futures = {pool.submit(run_child, BASELINES[rt]): (BASELINES[rt], None)
                   for rt in runtimes}
        futures.update({pool.submit(run_child, k, v): (k, v)
                        for v in FLAGS.variants for k in FLAGS.kinds if k not in QUANTIZE})
        for variant in FLAGS.variants:
            if variant in exports:
                results[("tflite_export", variant)] = exports[variant].result()
                progress(f"{variant} @ {r}px: exported into {folder}")
            futures.update({pool.submit(run_child, k, variant,
                                        artifact_path(folder, variant, r, k)): (k, variant)
                            for k in tflite_kinds})
        for future in concurrent.futures.as_completed(futures):
            results[futures[future]] = future.result()

    baselines = {rt: results[(BASELINES[rt], None)]["peak_rss_mb"] for rt in runtimes}
    rows = [{"variant": "—", "resolution": None, "measurement": BASELINES[rt], "runtime": rt,
             "peak_rss_mb": baselines[rt], "baseline_mb": None, "increment_mb": None}
            for rt in runtimes]
    for variant in FLAGS.variants:
        for kind in [*FLAGS.kinds, "tflite_export"]:
            if (kind, variant) not in results:  # tflite_export: only when this run exported
                continue
            res = results[(kind, variant)]
            base = baselines.get(RUNTIME.get(kind, "tensorflow"))
            rows.append({"variant": variant, "resolution": r, "measurement": kind,
                         "runtime": RUNTIME.get(kind, "tensorflow"),
                         "batch": res.get("batch", 1 if kind in RUNTIME else None),
                         "peak_rss_mb": res["peak_rss_mb"], "baseline_mb": base,
                         "increment_mb": round(res["peak_rss_mb"] - base, 1) if base else None,
                         "size_mb": res.get("size_mb"), "weights_mb": res.get("weights_mb"),
                         "tensorflow_imported": res.get("tensorflow_imported"),
                         "seconds": res["seconds"]})
    shown = [{**row, "peak MB": row["peak_rss_mb"], "baseline MB": row["baseline_mb"],
              "increment MB": row["increment_mb"], "file MB": row.get("size_mb"),
              "weights MB": row.get("weights_mb")}
             for row in rows]
    markdown = ("### Peak resident memory (MB = 10⁶ bytes), each in a fresh process\n\n"
                + markdown_table(shown, ["variant", "resolution", "measurement", "runtime",
                                         "batch", "peak MB", "baseline MB", "increment MB",
                                         "file MB", "weights MB"])
                + f"\n\nPeak = VmHWM of the measuring process; baseline = a process that only "
                  f"imported that runtime (TensorFlow: `import tensorflow`; LiteRT: "
                  f"`ai_edge_litert.interpreter`, no TensorFlow). Random weights; Keras "
                  f"inference = {FLAGS.runs} calls of a tf.function at batch 1; train = "
                  f"{min(FLAGS.runs, 2)} `train_on_batch` steps (Adam, jit_compile=False) at "
                  f"batch {FLAGS.batch_size}; TFLite = {FLAGS.runs} single-image invocations "
                  f"with {FLAGS.threads} threads (no TensorFlow in the process). "
                  f"tflite_export (only when this run exported) = `to_tflite` fp32 then int8 "
                  f"(16 calibration images) in one process: the converter's footprint. "
                  f"onnx_export = trace, freeze and convert to an ONNX proto with "
                  f"`onnx_model` (no verification); onnx_export_tf2onnx = the same with "
                  f"tf2onnx's `from_graph_def` (opset 17), the anchor. "
                  f"Total {time.time() - started:.0f} s, load average at the end "
                  f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}.")
    write_results(FLAGS.results, FLAGS.table, rows, markdown,
                  flags={"variants": FLAGS.variants, "resolution": r,
                         "batch_size": FLAGS.batch_size, "kinds": FLAGS.kinds,
                         "runs": FLAGS.runs, "threads": FLAGS.threads})


if __name__ == "__main__":
    run(main)
