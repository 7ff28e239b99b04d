"""Quantization accuracy: float Keras vs int8 PTQ vs int8 QAT, all in their real runtimes.

For each variant: train with the short recipe (or reuse `<workdir>/<variant>/model.keras` when a
previous run left one for the same data and resolution), export full-integer int8 TFLite by
post-training quantization, fine-tune quantization-aware for `--qat_epochs` and export again;
measure top-1 of the float model and both int8 models on the held-out split, plus size and
agreement with the float model. Point `--data` at a folder to measure on your own images.

    python benchmarks/quantization.py --variants=lite0,b0 --resolution=64 --epochs=25
"""

import json
import os
import time

from absl import flags

from common import markdown_table, run, write_results

FLAGS = flags.FLAGS
flags.DEFINE_list("variants", ["lite0", "b0"], "variants to train and quantize")
flags.DEFINE_string("data", "synthetic?train=1600&validation=400", "data spec (see docs/training.md)")
flags.DEFINE_integer("resolution", 64, "training and export resolution")
flags.DEFINE_integer("epochs", 25, "float training epochs (short recipe)")
flags.DEFINE_integer("qat_epochs", 2, "quantization-aware fine-tuning epochs")
flags.DEFINE_integer("calibration_steps", 200, "representative images for PTQ")
flags.DEFINE_integer("held_out", 400, "held-out images to measure on")
flags.DEFINE_string("workdir", "/tmp/effnet-quantization", "trained models and artifacts")
flags.DEFINE_string("results", "benchmarks/results", "where the tables go")


def _float_model(variant):
    """Train, or reuse a model trained by an earlier run on the same data and resolution."""
    import keras_effnet
    from keras_effnet.data import parse_spec
    from keras_effnet.train import train

    out = os.path.join(FLAGS.workdir, variant)
    summary_path = os.path.join(out, "summary.json")
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            summary = json.load(f)
        if (summary["data"]["spec"] == str(parse_spec(FLAGS.data).absolute()) and summary["epochs"] == FLAGS.epochs
                and summary["data"]["resolution"] == FLAGS.resolution):
            print(f"[quantization] {variant}: reusing {out}/model.keras", flush=True)
            return keras_effnet.load_model(os.path.join(out, "model.keras"), compile=False), 0.0
    print(f"[quantization] {variant}: training {FLAGS.epochs} epochs", flush=True)
    started = time.time()
    train(variant, data=FLAGS.data, epochs=FLAGS.epochs, resolution=FLAGS.resolution, out=out,
          verbose=2)
    return (keras_effnet.load_model(os.path.join(out, "model.keras"), compile=False),
            time.time() - started)


def main(_):
    from keras_effnet.data import examples
    from keras_effnet.export import fine_tune, to_tflite
    from keras_effnet.export.runtime import TFLiteRunner

    common = {"verify_data": FLAGS.data, "verify_count": FLAGS.held_out,
              "thresholds": {"min_decisive_agreement": None, "min_sqnr_db": None,
                             "max_accuracy_drop": None, "min_decisive_images": None}}
    rows = []
    for variant in FLAGS.variants:
        model, train_seconds = _float_model(variant)
        folder = os.path.join(FLAGS.workdir, variant)
        print(f"[quantization] {variant}: float32 and int8 PTQ export", flush=True)
        fp32 = to_tflite(model, os.path.join(folder, "float32.tflite"), **common)
        started = time.time()
        ptq = to_tflite(model, os.path.join(folder, "int8_ptq.tflite"), quantize="int8",
                        representative_data=FLAGS.data,
                        calibration_steps=FLAGS.calibration_steps, **common)
        ptq_seconds = time.time() - started
        print(f"[quantization] {variant}: {FLAGS.qat_epochs} QAT epochs, then int8", flush=True)
        started = time.time()
        qat_model = fine_tune(model, FLAGS.data, epochs=FLAGS.qat_epochs, verbose=2)
        qat = to_tflite(qat_model, os.path.join(folder, "int8_qat.tflite"), quantize="int8",
                        representative_data=FLAGS.data,
                        calibration_steps=FLAGS.calibration_steps, **common)
        qat_seconds = time.time() - started
        for method, report, seconds in (("float32", fp32, train_seconds),
                                        ("int8 PTQ", ptq, ptq_seconds),
                                        ("int8 QAT", qat, qat_seconds)):
            rows.append({"variant": variant, "method": method,
                         "top1": report["artifact_accuracy"],
                         "drop_vs_float_keras": report["accuracy_drop"],
                         "agreement_with_float": report["top1_agreement"],
                         "size_MB": round(report["size_bytes"] / 1e6, 2),
                         "latency_ms": report["median_latency_ms"],
                         "seconds": round(seconds, 1)})
            print(rows[-1], flush=True)
        # QAT's report compares with the QAT Keras model; against the float model instead:
        images, _ = examples(FLAGS.data, FLAGS.resolution, FLAGS.held_out)
        int8_top1 = TFLiteRunner(os.path.join(folder, "int8_qat.tflite"))(images).argmax(-1)
        rows[-1]["agreement_with_float"] = float(
            (int8_top1 == model.predict(images, verbose=0).argmax(-1)).mean())
        rows[-1]["drop_vs_float_keras"] = fp32["keras_accuracy"] - qat["artifact_accuracy"]
    columns = ["variant", "method", "top1", "drop_vs_float_keras", "agreement_with_float",
               "size_MB", "latency_ms", "seconds"]
    note = (f"\n\nData `{FLAGS.data}` at {FLAGS.resolution} px, {FLAGS.held_out} held-out images; "
            f"float trained {FLAGS.epochs} epochs (short recipe), QAT {FLAGS.qat_epochs} epochs; "
            "latency: one image, 2 interpreter threads. `seconds`: training (float), "
            "conversion + verification (PTQ), fine-tuning + conversion (QAT).")
    write_results(FLAGS.results, "quantization", rows, markdown_table(rows, columns) + note,
                  flags={"data": FLAGS.data, "resolution": FLAGS.resolution,
                         "epochs": FLAGS.epochs, "qat_epochs": FLAGS.qat_epochs})


if __name__ == "__main__":
    run(main)
