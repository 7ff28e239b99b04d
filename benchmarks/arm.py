"""Which ARM cores our TFLite files were checked on, and what was found: a trained run's int8
and float32 files in LiteRT's aarch64 build (XNNPACK's NEON, dot-product, I8MM and SVE/SVE2
kernels) under user-mode emulation (QEMU 10, `-cpu CORE`; set up by `make arm`), against this
machine's x86 LiteRT interpreter on the same pixels, one image per invoke.

The run is `--run` (a folder holding model_int8.tflite, model_float32.tflite and
summary.json, e.g. what `make quickstart` writes), or without it a fresh `effnet quickstart`
(the main job, ~75 s). Images: `--images` validation images of the run's data and
scikit-image's 8 photos (centre crops), as whole-number pixels. Per file and core: the largest
|Δ| of the scores (in output quantization steps for int8), whether the outputs are bit-exact
(with x86's, and with the first core's), and top-1 agreement on all images and on the
decisive ones (x86 top-1 ahead of top-2 by more than 0.1). Emulated timings mean nothing and
are not reported. Writes `results/arm.md` and `.json`.

    python benchmarks/arm.py --run=runs/quickstart
    python benchmarks/arm.py --cores=cortex-a55,max --qemu=/path/to/other/qemu-aarch64
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags
from common import markdown_table, run, write_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))  # arm.emulator: what tests/test_arm.py runs
from arm import emulator  # noqa: E402

FLAGS = flags.FLAGS
FILES = {"int8": "model_int8.tflite", "float32": "model_float32.tflite"}
flags.DEFINE_string("run", None, "a trained run folder (model_int8.tflite, "
                    "model_float32.tflite, summary.json); default: a fresh `effnet quickstart`")
flags.DEFINE_list("cores", [*emulator.CORES, "max"], "qemu -cpu names to check")
flags.DEFINE_integer("images", 64, "validation images of the run's data (plus 8 photos)")
flags.DEFINE_string("qemu", None, "another qemu-aarch64 binary than `make arm`'s (e.g. an "
                    "older QEMU, to compare)")
flags.DEFINE_string("results", "benchmarks/results", "where the table goes")
flags.DEFINE_string("name", "arm", "result file name (results/<name>.md)")
COLUMNS = ["file", "core", "features", "images", "decisive_images", "max_diff_steps",
           "max_abs_diff", "bit_exact", "differing_scores", "same_as_first_core",
           "top1_agreement", "decisive_top1_agreement"]


def check_flags():
    if FLAGS.images < 1:
        raise app.UsageError(f"--images={FLAGS.images}: at least 1")
    if not FLAGS.cores:
        raise app.UsageError("--cores is empty; e.g. --cores=cortex-a55,cortex-a710")
    if FLAGS.run and not all(os.path.isfile(os.path.join(FLAGS.run, name))
                             for name in [*FILES.values(), "summary.json"]):
        raise app.UsageError(f"--run={FLAGS.run}: needs {', '.join(FILES.values())} and "
                             "summary.json (what `effnet quickstart` writes)")
    if FLAGS.qemu and not os.access(FLAGS.qemu, os.X_OK):
        raise app.UsageError(f"--qemu={FLAGS.qemu}: not an executable file")
    missing = emulator.missing()
    if missing:
        raise app.UsageError(missing)


def quickstart(folder):
    """A fresh main-job run in `folder` (`effnet quickstart`, its defaults)."""
    effnet = os.path.join(os.path.dirname(sys.executable), "effnet")
    print("training: effnet quickstart (the main job, ~75 s)", flush=True)
    done = subprocess.run([effnet, "quickstart", f"--out={folder}"], capture_output=True,
                          text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit("effnet quickstart failed:\n" + done.stderr[-3000:])
    return folder


def images(run_folder, count):
    import numpy as np

    from keras_effnet.data import examples
    from test_torch_weights import _photos

    with open(os.path.join(run_folder, "summary.json")) as f:
        summary = json.load(f)
    resolution = summary["config"]["resolution"]
    found = examples(summary["data"]["spec"], resolution, count)[0]
    return np.round(np.concatenate([found, _photos(size=resolution)])).astype("float32"), summary


def main(argv):
    del argv
    check_flags()
    import numpy as np

    rows, seconds = [], {}
    with tempfile.TemporaryDirectory(prefix="arm-") as folder:
        run_folder = FLAGS.run or quickstart(os.path.join(folder, "run"))
        pixels, summary = images(run_folder, FLAGS.images)
        inputs = os.path.join(folder, "images.npy")
        np.save(inputs, pixels)
        for kind, name in FILES.items():
            path = os.path.join(run_folder, name)
            reference = os.path.join(folder, f"{kind}_x86.npy")
            host = emulator.run_tflite(path, inputs, reference, cpu=None)
            step = emulator.output_step(path)
            for cpu in FLAGS.cores:
                print(f"{name} on {cpu} (emulated)", flush=True)
                outputs = os.path.join(folder, f"{kind}_{cpu}.npy")
                started = time.perf_counter()
                said = emulator.run_tflite(path, inputs, outputs, cpu=cpu, qemu=FLAGS.qemu)
                seconds[f"{kind} {cpu}"] = round(time.perf_counter() - started, 1)
                result = emulator.compare(np.load(reference), np.load(outputs), step)
                first = os.path.join(folder, f"{kind}_{FLAGS.cores[0]}.npy")
                same = np.array_equal(np.load(first), np.load(outputs))
                rows.append({"file": f"{summary['config']['name']} {kind}", "core": cpu,
                             "features": " ".join(said["features"]) or "—", **result,
                             "bit_exact": "yes" if result["bit_exact"] else "no",
                             "same_as_first_core": "yes" if same else "no",
                             "output_step": step})
    qemu = emulator.qemu_version(FLAGS.qemu)
    made = emulator.manifest()
    command = "python benchmarks/arm.py " + " ".join(sys.argv[1:])
    markdown = (
        "### The trained lite0's TFLite files on ARM cores (emulated) against x86\n\n"
        f"Command: `{command.strip()}`; {qemu} (user mode, `-cpu CORE`); LiteRT "
        f"(ai-edge-litert) {host['ai_edge_litert']} on both sides, aarch64 wheel on Debian "
        f"{made['sysroot']['suite']} Python {made['smoke']['python']}; one thread, XNNPACK. "
        f"Model: {summary['config']['name']} of `effnet quickstart` "
        f"({summary['data']['spec']}, {summary['config']['resolution']} px); "
        f"{len(pixels)} images ({FLAGS.images} validation images and scikit-image's 8 photos). "
        "features: the int8-relevant hwcaps the emulated core announces (XNNPACK picks its "
        "kernels from them); max_diff_steps: max |Δ| over every score of every image in the "
        "int8 file's output quantization steps (the step of the int8 scores its float output "
        "dequantizes); differing_scores: scores not bit-equal to x86's; same_as_first_core: "
        "bit-equal to the first core's outputs; decisive: x86 top-1 ahead of top-2 by more "
        "than 0.1. Emulated timings mean nothing and are not reported.\n\n"
        + markdown_table(rows, COLUMNS))
    write_results(FLAGS.results, FLAGS.name, rows, markdown, command=command.strip(),
                  qemu=qemu, runtime=f"ai-edge-litert {host['ai_edge_litert']}",
                  emulated_wall_seconds=seconds, arm_setup={k: made[k] for k in
                                                            ("qemu", "smoke", "pins")})


if __name__ == "__main__":
    run(main)
