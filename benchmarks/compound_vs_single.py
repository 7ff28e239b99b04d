"""Compound scaling against one dimension at a time, trained (the paper's Table 3 / Table 7 /
Figure 8 test, at a scale two CPU cores can afford).

From one base, reach about 2× and about 4× its MACs by scaling depth only, width only,
resolution only, compound with the paper's (α, β, γ), and compound with the (α, β, γ) that
`keras_effnet.search.coefficients` finds on the same data (its search *is* the 2× step: the
single-dimension 2× rows are its reference rows). The 4× rows are φ = 2 of both compound
points and the single-dimension points measured nearest 4×. Every model trains with the same
recipe, epochs and seeds; the table reports validation top-1 mean ± std over the seeds against
the measured MACs. Every training is cached under `<results>/compound_vs_single_runs`, so a
killed run resumes. Writes `<results>/compound_vs_single.md`, `.json` and `.png`.

    python benchmarks/compound_vs_single.py --base=lite --resolution=32 --epochs=6 --seeds=3
"""

import os

from absl import app, flags
from common import markdown_table, run, write_results

FLAGS = flags.FLAGS
flags.DEFINE_string("base", "lite", "base network (efficientnet, lite, mobilenet_v2, …)")
flags.DEFINE_string("data", "synthetic?train=960&validation=480", "data spec")
flags.DEFINE_integer("resolution", 32, "the base's resolution (φ = 0)")
flags.DEFINE_integer("epochs", 6, "training epochs of every model")
flags.DEFINE_integer("seeds", 3, "seeds per model")
flags.DEFINE_integer("batch_size", 64, "batch size")
flags.DEFINE_integer("max_trials", 4, "grid points the search tries besides its references")
flags.DEFINE_string("results", "benchmarks/results", "where the tables and the plot go")

COLUMNS = ["target", "method", "α (depth)", "β (width)", "γ (res)", "res", "params",
           "MACs (M)", "MACs ×", "val top-1", "± std", "seeds"]


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; this script takes flags only")
    from keras_effnet import profile, scale
    from keras_effnet.search import (PAPER, Candidate, ProxyTraining, coefficients,
                                     plot_accuracy, references, train_candidate)

    runs = os.path.join(FLAGS.results, "compound_vs_single_runs")
    training = ProxyTraining(resolution=FLAGS.resolution, seeds=FLAGS.seeds,
                             epochs=FLAGS.epochs, batch_size=FLAGS.batch_size)
    print("step 1: the search (2x: its reference rows and grid candidates)", flush=True)
    search = coefficients(FLAGS.base, FLAGS.data, max_trials=FLAGS.max_trials, out=runs,
                          training=training)
    found = max((r for r in search["trials"] if r["role"] == "candidate"),
                key=lambda r: r["val_top1_mean"])
    searched = (found["alpha"], found["beta"], found["gamma"])
    anchor = profile(scale(phi=0, base=FLAGS.base, base_resolution=FLAGS.resolution)).macs

    def train_row(point, target, method):
        row = train_candidate(point, FLAGS.base, FLAGS.data, training, runs)
        print(f"{target}x {method}: top-1 {row['val_top1_mean']:.3f} ± {row['val_top1_std']:.3f}",
              flush=True)
        return {**row, "target": target, "method": method, "macs_multiplier": row["macs"] / anchor}

    rows = [train_row(Candidate(1.0, 1.0, 1.0), 1, "baseline")]
    by_role = {r["role"]: r for r in search["trials"]}
    for role in ("depth", "width", "resolution", "paper"):
        rows.append({**by_role[role], "target": 2, "method": role if role != "paper" else
                     "compound (paper)", "macs_multiplier": by_role[role]["macs"] / anchor})
    rows.append({**found, "target": 2, "method": "compound (searched)",
                 "macs_multiplier": found["macs"] / anchor})
    print("step 2: 4x", flush=True)
    for point in references(FLAGS.base, target=4.0, resolution=FLAGS.resolution)[1:]:
        rows.append(train_row(point, 4, point.role))
    rows.append(train_row(Candidate(*(c ** 2 for c in PAPER)), 4, "compound (paper)"))
    rows.append(train_row(Candidate(*(c ** 2 for c in searched)), 4, "compound (searched)"))
    table = [{"target": f"{r['target']}x", "method": r["method"], "α (depth)": r["alpha"],
              "β (width)": r["beta"], "γ (res)": r["gamma"], "res": r["resolution"],
              "params": r["params"], "MACs (M)": r["macs"] / 1e6,
              "MACs ×": r["macs_multiplier"], "val top-1": r["val_top1_mean"],
              "± std": r["val_top1_std"], "seeds": len(r["seeds"])} for r in rows]
    notes = (f"\n\nBase {FLAGS.base} at {FLAGS.resolution} px on {FLAGS.data}; every model "
             f"{FLAGS.epochs} epochs of the short recipe, batch {FLAGS.batch_size}, seeds "
             f"0..{FLAGS.seeds - 1}. Searched coefficients: α={searched[0]:g}, β={searched[1]:g},"
             f" γ={searched[2]:g} (the best grid candidate of the search in "
             "compound_vs_single_runs/search.md). MACs × is measured over the base's.")
    paths = write_results(FLAGS.results, "compound_vs_single", rows,
                          markdown_table(table, COLUMNS) + notes,
                          settings={"base": FLAGS.base, "data": FLAGS.data,
                                    "resolution": training.resolution, "seeds": training.seeds,
                                    "epochs": training.epochs,
                                    "batch_size": training.batch_size, "searched": searched},
                          plot="compound_vs_single.png")
    plot_accuracy(rows, os.path.join(FLAGS.results, "compound_vs_single.png"), by="method",
                  groups=("baseline", "compound (paper)", "depth", "width", "resolution",
                          "compound (searched)"))
    print(f"wrote {paths[0]}", flush=True)


if __name__ == "__main__":
    run(main)
