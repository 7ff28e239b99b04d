"""Training-step throughput (images/second): our model vs keras.applications', same run.

For each variant, builds our model (`keras_effnet.build`) and keras.applications' model of the
same architecture (b0 -> EfficientNetB0 … b7 -> EfficientNetB7, random weights), compiles both
identically (RMSprop, categorical cross-entropy, the same `jit_compile`, under the same global
precision policy), and times a loop of `model.train_on_batch` on the same seeded synthetic batch
(pixels in [0, 255], one-hot labels). The first `--warmup` steps of each model (tracing and
compilation included) are not timed; then the two models take turns for `--repeats` rounds of
`--steps` steps each (who goes first alternates), so a change in the machine's load hits both
alike. Images/second is the median over the rounds; the ratio is ours / keras.applications'
(≥ 1.0: we are not slower).
Lite variants have no keras.applications counterpart: only ours is measured.

The default resolution is 128 px rather than the variants' own (224 px for b0) so that the
default run (b0, batch 32, 5 rounds of 3 steps per model) takes about 5 minutes on a 2-core
CPU; pass --resolution=224 (or larger batches) on a GPU. The same flags work on a GPU:
--mixed_precision=mixed_float16 (or mixed_bfloat16) and --jit_compile (XLA).
It also runs on Keras's JAX backend (`KERAS_BACKEND=jax`; every step is then XLA-compiled),
which is how the GPU figures in BUILD_NOTES.md were taken.
Writes `<results>/train_throughput.md` and `.json`.

    python benchmarks/train_throughput.py                      # b0 at 128 px on this machine
    python benchmarks/train_throughput.py --variants=b0,b1,lite0 --resolution=224 \\
        --batch_size=128 --steps=20 --mixed_precision=mixed_float16 --jit_compile   # a GPU
"""

import os
import statistics
import time

from absl import app, flags
from common import markdown_table, run, write_results

FLAGS = flags.FLAGS
flags.DEFINE_list("variants", ["b0"], "variants to measure: b0..b7 (against keras.applications "
                  "EfficientNetB0..B7) and lite0..lite4 (ours only)")
flags.DEFINE_integer("resolution", 128, "input size for every model (128: the default run "
                     "takes ~5 min on 2 CPU cores; the variants' own sizes are 224..600)")
flags.DEFINE_integer("batch_size", 32, "images per training step")
flags.DEFINE_integer("steps", 3, "timed training steps per round")
flags.DEFINE_integer("warmup", 2, "untimed steps per model first (tracing and compilation)")
flags.DEFINE_integer("repeats", 5, "timed rounds per model (the models alternate); median taken")
flags.DEFINE_integer("num_classes", 1000, "classifier outputs")
flags.DEFINE_enum("mixed_precision", "none", ["none", "mixed_float16", "mixed_bfloat16"],
                  "global Keras precision policy for both models")
flags.DEFINE_bool("jit_compile", False, "compile both training steps with XLA")
flags.DEFINE_integer("seed", 0, "seed of the synthetic batch and the initial weights")
flags.DEFINE_string("results", "benchmarks/results", "where the tables go")

APPLICATIONS = {f"b{i}": f"EfficientNetB{i}" for i in range(8)}


def _progress(text):
    print(f"[train_throughput] {text}", flush=True)


def build_pair(variant, shape, num_classes):
    """Our model and keras.applications' (None for Lite variants), both untrained."""
    import keras

    import keras_effnet

    ours = keras_effnet.build(variant, num_classes=num_classes, input_shape=shape)
    theirs = None
    if variant in APPLICATIONS:
        theirs = getattr(keras.applications, APPLICATIONS[variant])(
            weights=None, input_shape=shape, classes=num_classes)
    return ours, theirs


def compile_for_benchmark(model, jit_compile):
    """Identical settings for every model measured."""
    import keras

    model.compile(optimizer=keras.optimizers.RMSprop(1e-3, momentum=0.9),
                  loss=keras.losses.CategoricalCrossentropy(), jit_compile=jit_compile)


def trainable_params(model):
    """Trainable parameter count (keras.applications also holds its Normalization's 7 stats)."""
    return sum(int(v.numpy().size) for v in model.trainable_variables)


def time_steps(model, images, labels, steps):
    """Seconds for `steps` calls of train_on_batch (each returns the loss: one sync per step)."""
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return time.perf_counter() - started


def measure(variant, images, labels):
    """One row: images/second of ours and keras.applications' (median over rounds), ratio."""
    import keras

    keras.utils.set_random_seed(FLAGS.seed)
    models = dict(zip(("ours", "theirs"),
                      build_pair(variant, tuple(images.shape[1:]), FLAGS.num_classes)))
    models = {k: m for k, m in models.items() if m is not None}
    rounds = {k: [] for k in models}
    for key, model in models.items():
        compile_for_benchmark(model, FLAGS.jit_compile)
        _progress(f"{variant}: warming up {model.name} ({FLAGS.warmup} steps, tracing included)")
        started = time.perf_counter()
        time_steps(model, images, labels, FLAGS.warmup)
        _progress(f"{variant}: {model.name} warm-up took {time.perf_counter() - started:.1f} s")
    for r in range(FLAGS.repeats):
        order = list(models.items())
        for key, model in (order if r % 2 == 0 else order[::-1]):  # who goes first alternates
            seconds = time_steps(model, images, labels, FLAGS.steps)
            rounds[key].append(FLAGS.steps * images.shape[0] / seconds)
            _progress(f"{variant}: round {r + 1}/{FLAGS.repeats} {model.name}: "
                      f"{rounds[key][-1]:.1f} images/s")
    speed = {k: statistics.median(v) for k, v in rounds.items()}
    row = {"variant": variant, "backend": keras.backend.backend(),
           "resolution": FLAGS.resolution, "batch_size": FLAGS.batch_size,
           "precision": FLAGS.mixed_precision, "xla": FLAGS.jit_compile,
           "ours_images_per_s": round(speed["ours"], 2),
           "keras_applications_images_per_s": (round(speed["theirs"], 2) if "theirs" in speed
                                               else None),
           "ratio": round(speed["ours"] / speed["theirs"], 3) if "theirs" in speed else None,
           "ours_rounds": [round(v, 2) for v in rounds["ours"]],
           "keras_applications_rounds": [round(v, 2) for v in rounds.get("theirs", [])],
           "ours_trainable_params": trainable_params(models["ours"]),
           "keras_applications_trainable_params": (trainable_params(models["theirs"])
                                                   if "theirs" in models else None)}
    _progress(f"{variant}: ours {row['ours_images_per_s']} images/s, keras.applications "
              f"{row['keras_applications_images_per_s'] or '—'}, ratio {row['ratio'] or '—'}")
    return row


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    for name, value in (("resolution", FLAGS.resolution), ("batch_size", FLAGS.batch_size),
                        ("steps", FLAGS.steps), ("repeats", FLAGS.repeats)):
        if value < (32 if name == "resolution" else 1):
            raise app.UsageError(f"--{name}={value}; accepted: an integer >= "
                                 f"{32 if name == 'resolution' else 1}")
    if FLAGS.warmup < 1:
        raise app.UsageError(f"--warmup={FLAGS.warmup}; accepted: >= 1 (the first step traces)")
    import keras_effnet

    variants = [v.strip().lower() for v in FLAGS.variants]
    for variant in variants:
        try:
            keras_effnet.scale(variant)
        except ValueError as err:
            raise app.UsageError(f"--variants: {err}") from None
    import keras
    import numpy as np

    keras.mixed_precision.set_global_policy(
        "float32" if FLAGS.mixed_precision == "none" else FLAGS.mixed_precision)
    rng = np.random.default_rng(FLAGS.seed)
    shape = (FLAGS.batch_size, FLAGS.resolution, FLAGS.resolution, 3)
    images = rng.uniform(0, 255, shape).astype("float32")
    labels = np.eye(FLAGS.num_classes, dtype="float32")[
        rng.integers(0, FLAGS.num_classes, FLAGS.batch_size)]
    # On the accelerator once: a GPU step would otherwise time the host-to-device copy.
    images, labels = keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels)
    load_before = os.getloadavg()
    started = time.time()
    rows = [measure(v, images, labels) for v in variants]
    load_after = os.getloadavg()
    columns = ["variant", "backend", "resolution", "batch_size", "precision", "xla",
               "ours_images_per_s", "keras_applications_images_per_s", "ratio"]
    shown = [{**row, "xla": "on" if row["xla"] else "off"} for row in rows]
    markdown = (markdown_table(shown, columns) + "\n\n"
                f"Images/second of `train_on_batch` (median of {FLAGS.repeats} rounds of "
                f"{FLAGS.steps} steps after {FLAGS.warmup} warm-up steps, models taking turns); "
                "ratio = ours / keras.applications (random weights, "
                f"{FLAGS.num_classes} classes, RMSprop). 1-minute load average "
                f"{load_before[0]:.2f} before, {load_after[0]:.2f} after "
                f"({os.cpu_count()} logical CPUs); run took {time.time() - started:.0f} s.")
    write_results(FLAGS.results, "train_throughput", rows, markdown,
                  settings={"steps": FLAGS.steps, "warmup": FLAGS.warmup,
                            "repeats": FLAGS.repeats, "num_classes": FLAGS.num_classes,
                            "seed": FLAGS.seed, "optimizer": "RMSprop(1e-3, momentum=0.9)",
                            "timed_call": "model.train_on_batch"},
                  load_average={"before": list(load_before), "after": list(load_after)})


if __name__ == "__main__":
    run(main)
