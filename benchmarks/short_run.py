"""Short-run learning benchmark: `effnet train` defaults on a rendered 2 000-image folder.

Renders the synthetic set as a 10-class folder of PNGs at 64 px (a stand-in for a user's first
folder; each seed renders its own images), trains with the short-run recipe for each seed, and
records validation top-1 and wall time per seed, beside a linear classifier and a three-layer
CNN on the same pipeline, and keras.applications EfficientNetB0 trained with plain `fit` as a
new user would (on seed 0's folder).
Writes `results/short_run.md` and `.json`.

    python benchmarks/short_run.py --seeds=0,1,2 --variants=lite0
"""

import os
import shutil
import time

from absl import flags

from common import markdown_table, run, write_results

FLAGS = flags.FLAGS
flags.DEFINE_list("seeds", ["0", "1", "2"], "training seeds")
flags.DEFINE_list("variants", ["lite0"], "models to train with the short recipe")
flags.DEFINE_integer("images", 2000, "folder size (train + held-out 20 %)")
flags.DEFINE_integer("resolution", 64, "image and model resolution")
flags.DEFINE_integer("epochs", 25, "epochs for every model (25: `effnet train`'s default)")
flags.DEFINE_list("baselines", ["linear", "cnn3", "keras.applications B0"],
                  "baselines trained on the same folder and epochs (empty: none)")
flags.DEFINE_string("workdir", "/tmp/effnet-short-run", "where the folder and runs go")
flags.DEFINE_string("results", "benchmarks/results", "where the tables go")


def baseline(kind, data, epochs):
    import keras
    from keras import layers

    res = data.resolution
    if kind == "linear":
        model = keras.Sequential([keras.Input((res, res, 3)), layers.Rescaling(1 / 255),
                                  layers.Flatten(), layers.Dense(data.num_classes, "softmax")])
    elif kind == "cnn3":
        blocks = []
        for filters in (32, 64, 128):
            blocks += [layers.Conv2D(filters, 3, padding="same", activation="relu"),
                       layers.BatchNormalization(momentum=0.9), layers.MaxPooling2D()]
        model = keras.Sequential([keras.Input((res, res, 3)), layers.Rescaling(1 / 255), *blocks,
                                  layers.GlobalAveragePooling2D(),
                                  layers.Dense(data.num_classes, "softmax")])
    else:  # keras.applications EfficientNetB0 from scratch, plain fit, as a new user would
        model = keras.applications.EfficientNetB0(weights=None, input_shape=(res, res, 3),
                                                  classes=data.num_classes)
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])
    started = time.time()
    model.fit(data.train, validation_data=data.validation, epochs=epochs, verbose=2)
    return {"model": kind, "val_top1": float(model.evaluate(data.validation, verbose=0)[1]),
            "seconds": round(time.time() - started, 1)}


def main(_):
    from keras_effnet.data import load, synthetic, write_image_folder
    from keras_effnet.train import train

    def folder(seed):
        path = os.path.join(FLAGS.workdir, f"folder{FLAGS.images}_{FLAGS.resolution}_seed{seed}")
        if not os.path.isdir(path):
            images, labels = synthetic(FLAGS.images, FLAGS.resolution, seed=11 + seed)
            write_image_folder(path, images, labels)
        return path

    rows = []
    for variant in FLAGS.variants:
        for seed in map(int, FLAGS.seeds):
            out = os.path.join(FLAGS.workdir, f"{variant}_seed{seed}")
            shutil.rmtree(out, ignore_errors=True)  # a fresh run: train() would resume an old one
            started = time.time()
            summary = train(variant, data=f"folder:{folder(seed)}", epochs=FLAGS.epochs,
                            resolution=FLAGS.resolution, seed=seed, verbose=2, out=out)
            rows.append({"model": f"{variant} (short recipe)", "seed": seed,
                         "val_top1": summary["validation"]["accuracy"],
                         "seconds": round(time.time() - started, 1),
                         "curve": [round(h["val_accuracy"], 3) for h in summary["history"]]})
            rows[-1]["epoch_reaching_0.8"] = next(
                (i + 1 for i, v in enumerate(rows[-1]["curve"]) if v >= 0.8), None)
            print(rows[-1])
            save(rows)
    if FLAGS.baselines:
        data = load(f"folder:{folder(0)}", resolution=FLAGS.resolution, batch_size=64)
        for kind in FLAGS.baselines:
            rows.append({**baseline(kind, data, FLAGS.epochs), "seed": 0})
            print(rows[-1])
            save(rows)


def save(rows):
    """Rewritten after every run, so that an interrupted benchmark keeps what it measured."""
    write_results(FLAGS.results, "short_run", rows, markdown_table(
        rows, ["model", "seed", "val_top1", "epoch_reaching_0.8", "seconds"]))


if __name__ == "__main__":
    run(main)
