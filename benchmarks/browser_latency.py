"""Per-image latency in the browser (the `effnet app` page) against native runtimes, one run.

For each mode (fp32, int8) the script builds `keras_effnet.build(variant, input_shape=(r, r,
3))` (random weights: latency does not depend on them), exports it with `to_tflite` (with its
image-classifier metadata; int8 calibrated on seeded random pixels, accuracy gates off as in
latency.py), writes the web app with the runtime copied in (`make_app(..., runtime=TARBALL)`),
serves it on 127.0.0.1 and opens `index.html?images=…` in headless Chromium: each image's time
is the page's own `ms` (its `ImageClassifier.classify` call: MediaPipe Tasks in WebAssembly,
CPU delegate, one thread). On the same pixels, in the same run: MediaPipe's Python
`ImageClassifier` (the same graph, native) and the LiteRT Python interpreter (`TFLiteRunner`:
set the input, invoke, read the output) with 1 and 2 threads. The runtimes take turns, round
after round (--rounds), so that a burst of other load falls on all of them; median and minimum
over the images of all rounds, each round's first --warmup images left out. Writes
`results/browser_latency.md` and `.json`.

    python benchmarks/browser_latency.py --variant=lite0 --resolution=224 --images=60
"""

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from absl import app, flags
from common import check_modes, markdown_table, run, write_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))  # chromium_client: the browser the tests drive
MODES = {"fp32": "none", "int8": "int8"}
FLAGS = flags.FLAGS
flags.DEFINE_string("variant", "lite0", "keras_effnet variant to measure")
flags.DEFINE_integer("resolution", 224, "input size")
flags.DEFINE_list("modes", list(MODES), f"TFLite modes, from: {', '.join(MODES)}")
flags.DEFINE_integer("images", 60, "timed images per runtime and mode (seeded random pixels, "
                     "as PNG files for the page)")
flags.DEFINE_integer("warmup", 5, "images run before the timed ones, in each round")
flags.DEFINE_integer("rounds", 3, "rounds of every runtime in turn")
flags.DEFINE_list("threads", ["1", "2"], "LiteRT interpreter thread counts")
flags.DEFINE_string("runtime", None, "the @mediapipe/tasks-vision `npm pack` tarball or folder "
                    "(default: .cache/tasks-vision/, where `make browser` puts it)")
flags.DEFINE_string("results", "benchmarks/results", "where the table goes")

NO_GATES = {"min_decisive_agreement": None, "min_sqnr_db": None, "max_accuracy_drop": None,
            "min_decisive_images": None}


def progress(message):
    print(f"[browser_latency {time.strftime('%H:%M:%S')}] {message}", flush=True)


def check_flags():
    from keras_effnet import VARIANTS
    from keras_effnet.export.webapp import TASKS_VISION_VERSION

    check_modes(FLAGS.modes, MODES)
    if FLAGS.variant not in VARIANTS:
        raise app.UsageError(f"--variant={FLAGS.variant}; accepted: {', '.join(VARIANTS)}")
    if FLAGS.resolution < 32 or FLAGS.images < 1 or FLAGS.warmup < 0 or FLAGS.rounds < 1:
        raise app.UsageError("accepted: --resolution ≥ 32, --images ≥ 1, --warmup ≥ 0, "
                             "--rounds ≥ 1")
    if not all(t.isdigit() and int(t) >= 1 for t in FLAGS.threads):
        raise app.UsageError(f"--threads={','.join(FLAGS.threads)}: each an integer ≥ 1")
    runtime = FLAGS.runtime or os.path.join(
        ROOT, ".cache", "tasks-vision", f"mediapipe-tasks-vision-{TASKS_VISION_VERSION}.tgz")
    if not os.path.exists(runtime):
        raise app.UsageError(f"no runtime at {runtime}: run `make browser`, or pass --runtime")
    from chromium_client import find_chromium

    if not find_chromium():
        raise app.UsageError("no Chromium here: apt-get install chromium (or `make browser`)")
    return runtime, [int(t) for t in FLAGS.threads]


def summary(rounds):
    timed = [t for times in rounds for t in times[FLAGS.warmup:]]
    return {"ms_median": statistics.median(timed), "ms_min": min(timed), "images": len(timed),
            "round_medians": " / ".join(f"{statistics.median(times[FLAGS.warmup:]):.3g}"
                                        for times in rounds)}


def app_with_images(path, runtime, folder, images):
    """The app of `path` in the new `folder`, with `images` as PNG files; their names."""
    from PIL import Image

    from keras_effnet.export.webapp import make_app

    make_app(path, folder, runtime=runtime)
    os.makedirs(os.path.join(folder, "images"))
    names = [f"images/{i:03d}.png" for i in range(len(images))]
    for name, image in zip(names, images):
        Image.fromarray(image).save(os.path.join(folder, name))
    return names


def browser_times(folder, names):
    """The page's own per-image ms (a fresh browser, a fresh page, as a user opens it)."""
    from chromium_client import Browser, app_url
    from keras_effnet.export.webapp import server

    httpd = server(folder, 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with Browser() as browser:
            url = f"http://127.0.0.1:{httpd.server_address[1]}/"
            results = browser.open(app_url(url, names)).results(timeout=600)
    finally:
        httpd.shutdown()
        httpd.server_close()
    failed = [r for r in results if "error" in r] if isinstance(results, list) else [results]
    if failed:
        raise RuntimeError(f"the page failed: {failed[:3]}")
    return [r["ms"] for r in results]


def mediapipe_times(path, images):
    """MediaPipe's Python ImageClassifier (native) on the same pixels, per image."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=path),
                                            max_results=5)
    times = []
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for image in images:
            frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=image)
            started = time.perf_counter()
            classifier.classify(frame)
            times.append((time.perf_counter() - started) * 1e3)
    return times


def litert_times(path, images, threads):
    from keras_effnet.export.runtime import TFLiteRunner

    runner = TFLiteRunner(path, num_threads=threads)
    times = []
    for image in images.astype("float32"):
        started = time.perf_counter()
        runner.run_one(image)
        times.append((time.perf_counter() - started) * 1e3)
    return times


def context():
    """Chromium's version and the commit measured."""
    from chromium_client import find_chromium

    said = subprocess.run([find_chromium(), "--version"], capture_output=True, text=True,
                          timeout=60).stdout.strip()
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "unknown"
    return said, commit


def main(argv):
    del argv
    runtime, threads = check_flags()
    import numpy as np

    import keras_effnet
    from keras_effnet.export import to_tflite
    from keras_effnet.export import mediapipe_client
    from keras_effnet.export.webapp import TASKS_VISION, TASKS_VISION_VERSION

    r = FLAGS.resolution
    count = FLAGS.warmup + FLAGS.images
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, r, r, 3), dtype=np.uint8)
    calibration = rng.uniform(0, 255, (32, r, r, 3)).astype("float32")
    model = keras_effnet.build(FLAGS.variant, input_shape=(r, r, 3))
    rows = []
    with tempfile.TemporaryDirectory(prefix="browser-latency-") as folder:
        for mode in FLAGS.modes:
            path = os.path.join(folder, f"{FLAGS.variant}_{mode}.tflite")
            progress(f"exporting {FLAGS.variant} {mode} at {r} px")
            to_tflite(model, path, quantize=MODES[mode], representative_data=calibration,
                      verify_data=calibration[:8],
                      thresholds=NO_GATES if mode == "int8" else None)
            names = app_with_images(path, runtime, os.path.join(folder, mode), images)
            measured = {}
            for turn in range(FLAGS.rounds):
                progress(f"{mode}, round {turn + 1}/{FLAGS.rounds}: the page in headless "
                         f"Chromium ({count} images), MediaPipe Python, LiteRT")
                measured.setdefault(("browser: MediaPipe Tasks web (WASM, CPU)", 1), []).append(
                    browser_times(os.path.join(folder, mode), names))
                if mediapipe_client.available():
                    measured.setdefault(("MediaPipe Python (native)", None), []).append(
                        mediapipe_times(path, images))
                for t in threads:
                    measured.setdefault(("LiteRT Python interpreter", t), []).append(
                        litert_times(path, images, t))
            anchor = summary(measured[("LiteRT Python interpreter", threads[0])])["ms_median"]
            for (runtime_name, t), times in measured.items():
                stats = summary(times)
                rows.append({"model": f"{FLAGS.variant} {mode}", "resolution": r,
                             "runtime": runtime_name, "threads": t, **stats,
                             "vs_litert": stats["ms_median"] / anchor})
    chromium, commit = context()
    command = "python benchmarks/browser_latency.py " + " ".join(sys.argv[1:])
    table = markdown_table(rows, ["model", "resolution", "runtime", "threads", "ms_median",
                                  "ms_min", "images", "vs_litert", "round_medians"])
    markdown = (f"### Per-image latency: the browser page against native runtimes\n\n"
                f"Command: `{command.strip()}`; commit {commit}; {chromium} (headless); "
                f"{TASKS_VISION}@{TASKS_VISION_VERSION}. Random weights; seeded random "
                f"pixels; {FLAGS.rounds} rounds of every runtime in turn, each "
                f"{FLAGS.images} timed images after {FLAGS.warmup} warm-up ones. "
                f"The page times its `classify` call (`performance.now()`, 0.1 ms steps); "
                f"vs_litert = median / LiteRT's with {threads[0]} thread(s), same mode.\n\n"
                + table)
    write_results(FLAGS.results, "browser_latency", rows, markdown, command=command.strip(),
                  commit=commit, chromium=chromium,
                  runtime=f"{TASKS_VISION}@{TASKS_VISION_VERSION}")


if __name__ == "__main__":
    run(main)
