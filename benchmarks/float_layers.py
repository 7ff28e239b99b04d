"""int8 accuracy, size and latency against `float_layers` (N = 0, 1, 2, 4, 8), one trained
model whose plain int8 file loses accuracy.

The model: a small ReLU CNN trained on scikit-learn's real handwritten digits (1 797 8×8
scans, ink 0-16 scaled to 0-255, enlarged to `--resolution` px, RGB; 1 200 to train, the
other 597 measured). Then, in two places, one channel's scale is moved across a layer
boundary: a conv's output channel ×`--scale` (its kernel and bias), the next conv's weights
reading that channel ÷`--scale`. ReLU commutes with a positive scale, so the float model
computes the same function (its accuracy is printed before and after, equal), but its int8
file quantizes each of those activations with one step set by the outlier channel: the other
channels keep a level or two, and the int8 file loses accuracy. Real networks carry such
channel imbalances (BatchNorm folding, no weight decay); here they are made on purpose.

Each N is one `to_tflite(..., quantize="int8", float_layers=N)`: calibrated on the train
images (the export's own calibration: the first 100), the debugger's layer ranking, the N
worst layers and their readers kept in float, verified on the 597 held-out digits in LiteRT
with 2 threads; size and single-image latency as verification measures them (median of 20).

    python benchmarks/float_layers.py                      # ~40 s on 2 cores
    python benchmarks/float_layers.py --counts=0,1,2,4,8 --scale=300 --resolution=64
"""

import os
import sys
import tempfile

import numpy as np
from absl import flags

from common import markdown_table, run, write_results

FLAGS = flags.FLAGS
flags.DEFINE_list("counts", ["0", "1", "2", "4", "8"], "float_layers values to measure")
flags.DEFINE_float("scale", 300.0, "the factor one channel is moved by, in two places")
flags.DEFINE_integer("resolution", 64, "image size (the 8×8 digits enlarged)")
flags.DEFINE_integer("epochs", 10, "training epochs")
flags.DEFINE_integer("seed", 0, "training seed")
flags.DEFINE_string("results", "benchmarks/results", "where the tables go")

COLUMNS = ["float_layers", "kept in float (ops)", "int8 accuracy", "float accuracy",
           "accuracy drop", "sqnr_db", "size (KB)", "latency (ms)", "latency vs plain int8"]


def avx512_flags():
    """Every avx512* flag of the first CPU in /proc/cpuinfo (int8 kernels depend on them)."""
    try:
        with open("/proc/cpuinfo") as f:
            line = next((row for row in f if row.startswith("flags")), "")
    except OSError:
        return []
    return sorted({flag for flag in line.split() if flag.startswith("avx512")})


def digits(resolution, seed):
    """(train images, train labels, test images, test labels): 1 200 / 597, shuffled."""
    from sklearn.datasets import load_digits

    data = load_digits()
    factor = resolution // 8
    images = np.kron(data.images, np.ones((factor, factor))) * (255 / 16)
    images = np.repeat(images[..., None], 3, axis=-1).astype("float32")
    order = np.random.default_rng(seed).permutation(len(images))
    images, labels = images[order], data.target[order]
    return images[:1200], labels[:1200], images[1200:], labels[1200:]


def trained_model(train, labels, resolution, epochs, seed):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((resolution, resolution, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="stem")(x)
    x = keras.layers.Conv2D(32, 3, activation="relu", name="a1")(x)
    x = keras.layers.Conv2D(32, 3, strides=2, activation="relu", name="b1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.Conv2D(64, 3, activation="relu", name="a2")(x)
    x = keras.layers.Conv2D(64, 1, activation="relu", name="b2")(x)
    x = keras.layers.Conv2D(64, 3, strides=2, activation="relu", name="c2")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="c3")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="head")(x),
                        name="digits_cnn")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train, labels, batch_size=32, epochs=epochs, verbose=0)
    return model


def move_channel_scale(model, scale):
    """In a1 -> b1 and a2 -> b2: a1's (a2's) most active output channel ×scale, b1's (b2's)
    weights on it ÷scale. The float function is unchanged (ReLU(s·z) = s·ReLU(z), s > 0)."""
    for producer, reader in (("a1", "b1"), ("a2", "b2")):
        kernel, bias = model.get_layer(producer).get_weights()
        channel = int(np.argmax(np.abs(kernel).sum(axis=(0, 1, 2))))
        kernel[..., channel] *= scale
        bias[channel] *= scale
        model.get_layer(producer).set_weights([kernel, bias])
        kernel, bias = model.get_layer(reader).get_weights()
        kernel[:, :, channel, :] /= scale
        model.get_layer(reader).set_weights([kernel, bias])


def main(argv):
    from keras_effnet.export import to_tflite

    counts = [int(c) for c in FLAGS.counts]
    train, train_labels, test, test_labels = digits(FLAGS.resolution, FLAGS.seed)
    model = trained_model(train, train_labels, FLAGS.resolution, FLAGS.epochs, FLAGS.seed)
    before = float(np.mean(model.predict(test, verbose=0).argmax(-1) == test_labels))
    move_channel_scale(model, FLAGS.scale)
    after = float(np.mean(model.predict(test, verbose=0).argmax(-1) == test_labels))
    print(f"float accuracy {before:.4f} before the scale move, {after:.4f} after")
    gates = {"min_decisive_agreement": None, "min_sqnr_db": None, "max_accuracy_drop": None,
             "min_decisive_images": None}  # measured, not gated
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for count in counts:
            report = to_tflite(model, os.path.join(folder, f"m{count}.tflite"), "int8",
                               representative_data=train, verify_data=(test, test_labels),
                               verify_count=len(test), thresholds=gates, float_layers=count,
                               metadata=False)
            entry = report.get("float_layers", {})
            plain = entry.get("plain_int8", {"median_latency_ms": report["median_latency_ms"]})
            rows.append({"float_layers": count,
                         "kept in float (ops)": len(entry.get("kept_in_float", [])),
                         "layers": entry.get("layers", []),
                         "int8 accuracy": report["artifact_accuracy"],
                         "float accuracy": report["keras_accuracy"],
                         "accuracy drop": report["accuracy_drop"],
                         "sqnr_db": report["sqnr_db"], "size (KB)": report["size_bytes"] / 1e3,
                         "latency (ms)": report["median_latency_ms"],
                         "latency vs plain int8": (report["median_latency_ms"]
                                                   / plain["median_latency_ms"]),
                         "worst_layers": report.get("worst_layers")})
    command = "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
    flags_text = " ".join(avx512_flags()) or "none"
    markdown = (f"### int8 against float layers (same run, LiteRT, 2 threads)\n\n"
                f"Command: `{command}`; AVX-512 flags: {flags_text}. A ReLU CNN trained "
                f"{FLAGS.epochs} epochs on the scikit-learn digits at {FLAGS.resolution} px (1 200 train, 597 measured), "
                f"float accuracy {before:.4f}; one channel's scale moved ×{FLAGS.scale:g} across "
                f"a1 -> b1 and a2 -> b2 (float accuracy after: {after:.4f}, the same function). "
                "Calibrated on the first 100 train images; `float_layers=N` keeps the N worst "
                "layers of the layer report and the ops reading them in float. Latency: one "
                "image, median of 20, as verification measures it (`latency vs plain int8`: "
                "against the plain int8 file measured in the same export).\n\n"
                + markdown_table(rows, COLUMNS))
    write_results(FLAGS.results, "float_layers", rows, markdown, command=command,
                  avx512_flags=avx512_flags(),
                  float_accuracy_before_move=before, float_accuracy_after_move=after)


if __name__ == "__main__":
    run(main)
