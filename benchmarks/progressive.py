"""Training methods against each other at equal epochs, same run: progressive learning against
fixed size, `train`'s default start (a released variant's ImageNet weights, new head, the
recipe's fine-tuning rate) against training from scratch, and staged against full
fine-tuning.

For each data set, model and `--starts` start (scratch: `weights=None`; default: `train`'s
default `weights="auto"`), trains `--seeds` seeds with the short recipe for each `--methods`
method: at the full `--resolution` every epoch (fixed), or with `progressive=True` (the
schedule derived from the model and the run: 4 stages from 128/300 of the size, at least
48 px, regularisation by the model's size, the stage's size and the images seen;
docs/training.md); a run from ImageNet weights once for each `--fine_tuning` mode (staged:
the head alone, then the blocks from the top, batch norm frozen; full). Records the wall time
of `fit` and the validation top-1 at the full size, mean ± std over the seeds.

Data: the real handwritten digits of scikit-learn (1 797 8×8 scans, written as a folder of
PNGs at 32 px, a bench extra) and the embedded synthetic set. Every training is cached under
`--workdir`, so a killed run resumes.

    python benchmarks/progressive.py --models=lite0,v2-b0 --seeds=0,1,2 \
        --starts=scratch,default --fine_tuning=full,staged
    python benchmarks/progressive.py --models=lite0 --starts=scratch,default --methods=fixed \
        --name=transfer
"""

import os

import numpy as np
from absl import flags

from common import markdown_table, run, write_results

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["lite0", "v2-b0"], "released variants to train")
flags.DEFINE_list("data", ["digits", "synthetic"], "digits (scikit-learn) and/or synthetic")
flags.DEFINE_list("seeds", ["0", "1", "2"], "training seeds")
flags.DEFINE_list("starts", ["scratch"], "scratch (weights=None) and/or default (train's "
                  "default: ImageNet weights for a released variant that has them)")
flags.DEFINE_list("methods", ["fixed", "progressive"], "fixed size and/or progressive")
flags.DEFINE_list("fine_tuning", ["full"], "with --starts=default: full (train's default) "
                  "and/or staged (the progressive runs take the first)")
flags.DEFINE_string("name", "progressive", "the results' file name (benchmarks/results/NAME.*)")
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


def one_run(model, data, start, method, seed, fine_tuning="full"):
    import json

    from keras_effnet import scale
    from keras_effnet.train import train

    tag = "" if fine_tuning == "full" else f"-{fine_tuning}"
    out = os.path.join(FLAGS.workdir, "runs", f"{data[0]}-{model}-{start}{tag}-{method}-{seed}")
    summary_path = os.path.join(out, "summary.json")
    if os.path.exists(summary_path):
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
    else:
        summary = train(scale(model), data=data[1], epochs=FLAGS.epochs,
                        batch_size=FLAGS.batch_size, resolution=FLAGS.resolution, out=out,
                        seed=seed, verbose=2, progressive=method == "progressive",
                        weights=None if start == "scratch" else "auto",
                        fine_tuning=fine_tuning)
    stages = [s for s in summary.get("stages") or [] if method == "progressive"]
    tuned = (summary.get("fine_tuning") or {}).get("mode", "-")
    return {"data": data[0], "model": model, "start": summary["weights"], "method": method,
            "fine-tuning": tuned,
            "seed": seed, "learning_rate": summary["recipe"]["learning_rate"],
            "val_top1": summary["validation"]["accuracy"],
            "fit_s": summary["fit_seconds_this_run"],
            "sizes": "→".join(dict.fromkeys(str(s["size"]) for s in stages))
            or str(FLAGS.resolution)}


def weights_unavailable(models):
    """{model: why} for the models whose default start (ImageNet weights) cannot be had here."""
    from keras_effnet import scale
    from keras_effnet.train import starting_weights

    found = {}
    for model in models:
        try:
            starting_weights(scale(model), "auto", False)
        except ValueError as err:
            found[model] = str(err).split(":")[0] + ": not reachable here"
    return found


def main(argv):
    from absl import app

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; this script takes flags only")
    for name, given, accepted in (("data", FLAGS.data, ("digits", "synthetic")),
                                  ("starts", FLAGS.starts, ("scratch", "default")),
                                  ("methods", FLAGS.methods, ("fixed", "progressive")),
                                  ("fine_tuning", FLAGS.fine_tuning, ("full", "staged"))):
        unknown = set(given) - set(accepted)
        if unknown or not given:
            raise app.UsageError(f"--{name}: {sorted(unknown) or 'none'}; accepted: "
                                 f"{', '.join(accepted)}")
    os.makedirs(FLAGS.workdir, exist_ok=True)
    sources = [("digits", digits_folder(FLAGS.workdir)) if name == "digits"
               else ("synthetic", SYNTHETIC) for name in FLAGS.data]
    rows, unavailable = [], weights_unavailable(FLAGS.models) if "default" in FLAGS.starts else {}
    for model, why in unavailable.items():
        print(f"{model}: no runs from ImageNet weights ({why})", flush=True)
    for seed in (int(s) for s in FLAGS.seeds):  # all settings of a seed first
        for data in sources:
            for model in FLAGS.models:
                for start in FLAGS.starts:
                    if start == "default" and model in unavailable:
                        continue
                    for method in FLAGS.methods:
                        modes = (["full"] if start == "scratch" else FLAGS.fine_tuning[:1]
                                 if method == "progressive" else FLAGS.fine_tuning)
                        for mode in modes:
                            rows.append(one_run(model, data, start, method, seed, mode))
                            print(rows[-1], flush=True)
    groups = {}
    for r in rows:
        groups.setdefault((r["data"], r["model"], r["start"], r["fine-tuning"], r["method"]),
                          []).append(r)
    mean_s = {key: np.mean([r["fit_s"] for r in group]) for key, group in groups.items()}
    first = next(iter(groups))
    table = []
    for key, group in groups.items():
        top1, seconds = [r["val_top1"] for r in group], [r["fit_s"] for r in group]
        # the same start at a fixed size, fully fine-tuned (staged runs are timed against it)
        anchor = mean_s.get((*key[:3], "-" if key[3] == "-" else "full", "fixed"), mean_s[first])
        table.append({"data": key[0], "model": key[1], "start": key[2], "fine-tuning": key[3],
                      "method": key[4],
                      "learning rate": group[0]["learning_rate"],
                      "sizes": group[0]["sizes"], "seeds": len(group),
                      "val top-1": f"{np.mean(top1):.3f} ± {np.std(top1):.3f}",
                      "fit s": f"{np.mean(seconds):.0f} ± {np.std(seconds):.0f}",
                      "time vs fixed": f"{mean_s[key] / anchor:.2f}×"})
    columns = ["data", "model", "start", "fine-tuning", "method", "learning rate", "sizes", "seeds",
               "val top-1", "fit s", "time vs fixed"]
    markdown = (f"### Training methods at equal epochs ({FLAGS.epochs} epochs, "
                f"{FLAGS.resolution} px, short recipe, batch {FLAGS.batch_size})\n\n"
                + markdown_table(table, columns) + "\n\nEvery run:\n\n"
                + markdown_table(rows, ["data", "model", "start", "fine-tuning", "method", "seed",
                                        "sizes", "val_top1", "fit_s"]))
    write_results(FLAGS.results, FLAGS.name, rows, markdown,
                  settings={"epochs": FLAGS.epochs, "resolution": FLAGS.resolution,
                            "batch_size": FLAGS.batch_size, "seeds": FLAGS.seeds,
                            "starts": FLAGS.starts, "methods": FLAGS.methods,
                            "fine_tuning": FLAGS.fine_tuning})


if __name__ == "__main__":
    run(main)
