"""Progressive learning against fixed-size training, at equal epochs, same run.

For each data set and model, trains `--seeds` seeds twice with the short recipe from scratch:
once at the full `--resolution` every epoch, once with `progressive=True` (the schedule
derived from the model: 4 stages from 128/300 of the size, dropout, RandAugment and mixup
growing; docs/efficientnetv2.md). Records the wall time of `fit` and the validation top-1 at
the full size, mean ± std over the seeds.

Data: the real handwritten digits of scikit-learn (1 797 8×8 scans, written as a folder of
PNGs at 32 px, a bench extra) and the embedded synthetic set. Every training is cached under
`--workdir`, so a killed run resumes.

    python benchmarks/progressive.py --models=lite0,v2-b0 --seeds=0,1,2
"""

import os

import numpy as np
from absl import flags

from common import markdown_table, run, write_results

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["lite0", "v2-b0"], "released variants to train")
flags.DEFINE_list("data", ["digits", "synthetic"], "digits (scikit-learn) and/or synthetic")
flags.DEFINE_list("seeds", ["0", "1", "2"], "training seeds")
flags.DEFINE_integer("resolution", 64, "the full image size (the saved model's)")
flags.DEFINE_integer("epochs", 8, "epochs of every training")
flags.DEFINE_integer("batch_size", 32, "global batch size")
flags.DEFINE_string("workdir", "/tmp/effnet-progressive", "where the data and runs go")
flags.DEFINE_string("results", "benchmarks/results", "where the tables go")

SYNTHETIC = "synthetic?train=960&validation=240"


def digits_folder(workdir):
    """scikit-learn's digits as a folder of PNGs (0-16 ink scaled to 0-255, ×4 to 32 px)."""
    from sklearn.datasets import load_digits

    from keras_effnet.data import write_image_folder

    path = os.path.join(workdir, "digits")
    if not os.path.isdir(path):
        digits = load_digits()
        images = np.kron(digits.images, np.ones((4, 4))) * (255 / 16)
        images = np.repeat(images[..., None], 3, axis=-1).round().astype("uint8")
        write_image_folder(path + ".tmp", images, digits.target,
                           class_names=tuple(str(d) for d in range(10)))
        os.rename(path + ".tmp", path)
    return f"folder:{path}"


def one_run(model, data, method, seed):
    import json

    from keras_effnet import scale
    from keras_effnet.train import train

    out = os.path.join(FLAGS.workdir, "runs", f"{data[0]}-{model}-{method}-{seed}")
    summary_path = os.path.join(out, "summary.json")
    if os.path.exists(summary_path):
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
    else:
        summary = train(scale(model), data=data[1], epochs=FLAGS.epochs,
                        batch_size=FLAGS.batch_size, resolution=FLAGS.resolution, out=out,
                        seed=seed, verbose=2, progressive=method == "progressive")
    stages = summary.get("progressive", {}).get("stages") or []
    return {"data": data[0], "model": model, "method": method, "seed": seed,
            "val_top1": summary["validation"]["accuracy"],
            "fit_s": summary["fit_seconds_this_run"],
            "sizes": "→".join(str(s["size"]) for s in stages) or str(FLAGS.resolution)}


def main(argv):
    from absl import app

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; this script takes flags only")
    unknown = set(FLAGS.data) - {"digits", "synthetic"}
    if unknown:
        raise app.UsageError(f"--data: {sorted(unknown)}; accepted: digits, synthetic")
    os.makedirs(FLAGS.workdir, exist_ok=True)
    sources = [("digits", digits_folder(FLAGS.workdir)) if name == "digits"
               else ("synthetic", SYNTHETIC) for name in FLAGS.data]
    rows = []
    for data in sources:
        for model in FLAGS.models:
            for seed in (int(s) for s in FLAGS.seeds):
                for method in ("fixed", "progressive"):
                    rows.append(one_run(model, data, method, seed))
                    print(rows[-1], flush=True)
    groups = {}
    for r in rows:
        groups.setdefault((r["data"], r["model"], r["method"]), []).append(r)
    mean_s = {key: np.mean([r["fit_s"] for r in group]) for key, group in groups.items()}
    table = []
    for (data, model, method), group in groups.items():
        top1, seconds = [r["val_top1"] for r in group], [r["fit_s"] for r in group]
        table.append({"data": data, "model": model, "method": method,
                      "sizes": group[0]["sizes"], "seeds": len(group),
                      "val top-1": f"{np.mean(top1):.3f} ± {np.std(top1):.3f}",
                      "fit s": f"{np.mean(seconds):.0f} ± {np.std(seconds):.0f}",
                      "time vs fixed": f"{mean_s[data, model, method] / mean_s[data, model, 'fixed']:.2f}×"})
    columns = ["data", "model", "method", "sizes", "seeds", "val top-1", "fit s", "time vs fixed"]
    markdown = (f"### Progressive learning vs fixed size ({FLAGS.epochs} epochs, "
                f"{FLAGS.resolution} px, short recipe from scratch, batch {FLAGS.batch_size})\n\n"
                + markdown_table(table, columns) + "\n\nEvery run:\n\n"
                + markdown_table(rows, ["data", "model", "method", "seed", "sizes", "val_top1",
                                        "fit_s"]))
    write_results(FLAGS.results, "progressive", rows, markdown,
                  settings={"epochs": FLAGS.epochs, "resolution": FLAGS.resolution,
                            "batch_size": FLAGS.batch_size, "seeds": FLAGS.seeds})


if __name__ == "__main__":
    run(main)
