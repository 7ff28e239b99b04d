"""Compound scaling versus one dimension at a time (the setting of the paper's Figure 3).

For each φ, compound scaling (`scale(phi=φ)`: depth α^φ, width β^φ, resolution 224·γ^φ) sets
a MACs budget; then depth alone, width alone and resolution alone are each scaled until the
network reaches the *same* MACs, the other two dimensions held at B0's. The single coefficient
is found by bisection on its logarithm through `scale(phi=1, alpha=d, beta=1, gamma=1)` (depth),
`beta=w` (width) and `gamma=r/224` (resolution); block counts, channels (multiples of 8) and
resolution (multiples of 8) are rounded, so MACs is a step function of the coefficient and the
row keeps the coefficient whose MACs land nearest the budget, with the MACs actually reached.
Everything is counted analytically by `keras_effnet.profile` (no TensorFlow graph is built).
Writes `<results>/scaling.md`, `.json` and `.png` (MACs and parameters versus φ, one line per
method, log y axis).

    python benchmarks/scaling.py --phi=0,1,2,3,4,5,6,7 --results=benchmarks/results
"""

import math
import os

from absl import app, flags
from common import markdown_table, parse_phi, run, validate_phi_flag, write_results

FLAGS = flags.FLAGS
flags.DEFINE_list("phi", [str(p) for p in range(8)],
                  "compound-scaling coefficients φ (numbers) that set the MACs budgets")
flags.DEFINE_enum("base", "efficientnet", ["efficientnet", "lite"], "base network to scale")
flags.DEFINE_string("results", "benchmarks/results", "where the tables and the plot go")

METHODS = ("compound", "depth", "width", "resolution")
# Which of scale()'s coefficients each single-dimension method turns (φ is held at 1 so the
# coefficient is the scale factor itself).
_KNOB = {"depth": "alpha", "width": "beta", "resolution": "gamma"}


validate_phi_flag(allow_empty=False)


def single(method, coefficient, base):
    """B0 (of `base`) with one dimension scaled by `coefficient`: its config and profile."""
    from keras_effnet import profile, scale

    knobs = {"alpha": 1.0, "beta": 1.0, "gamma": 1.0, _KNOB[method]: float(coefficient)}
    config = scale(phi=1, base=base, **knobs)
    return config, profile(config)


def match_macs(method, target, base, iterations=60):
    """The coefficient of `method` whose MACs land nearest `target`: bisection on log(coef).

    MACs grow monotonically (in steps) with each coefficient; bisection converges on the step
    that crosses the target and evaluates both sides of it, and the nearest evaluated point wins.
    """
    evaluated = {}

    def macs(c):
        if c not in evaluated:
            evaluated[c] = single(method, c, base)
        return evaluated[c][1].macs

    lo, hi = 1.0, 1.0
    while macs(hi) < target:
        lo, hi = hi, hi * 2
    while macs(lo) > target:
        lo, hi = lo / 2, lo
    for _ in range(iterations):
        if hi / lo < 1 + 1e-6:
            break
        mid = math.sqrt(lo * hi)
        if macs(mid) < target:
            lo = mid
        else:
            hi = mid
    best = min(evaluated, key=lambda c: (abs(math.log(evaluated[c][1].macs / target)), c))
    return best, *evaluated[best]


def row(phi, method, coefficient, config, prof, target):
    return {"phi": phi, "method": method, "coefficient": coefficient,
            "depth": config.depth, "width": config.width, "resolution": config.resolution,
            "blocks": len(config.blocks), "params": prof.trainable_params, "macs": prof.macs,
            "target_macs": target, "macs_vs_compound": prof.macs / target,
            "params_vs_compound": None}


def plot(rows, phis, path, predicted=None):
    """Two panels, MACs and parameters versus φ, one line per method; written atomically.
    `predicted`: {φ: MACs} of the paper's (α·β²·γ²)^φ curve, drawn dotted on the MACs panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"compound": ("k", "o", "-"), "depth": ("tab:blue", "s", "--"),
              "width": ("tab:orange", "^", "--"), "resolution": ("tab:green", "v", "--")}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in ((axes[0], "macs", "MACs (billions)"),
                           (axes[1], "params", "trainable parameters (millions)")):
        unit = 1e9 if key == "macs" else 1e6
        for method in METHODS:
            color, marker, line = styles[method]
            points = [(r["phi"], r[key] / unit) for r in rows if r["method"] == method]
            ax.plot(*zip(*points), color=color, marker=marker, linestyle=line, label=method,
                    markersize=5, linewidth=1.5)
        if key == "macs" and predicted:
            ax.plot(list(predicted), [m / unit for m in predicted.values()], color="0.5",
                    linestyle=":", linewidth=1.5, label="(α·β²·γ²)^φ × φ=0")
        ax.set_yscale("log")
        ax.set_xlabel("φ (compound-scaling coefficient)")
        ax.set_ylabel(label)
        ax.set_xticks(phis)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_title("MACs: each single dimension matched to compound")
    axes[1].set_title("parameters at the same MACs")
    axes[0].legend(fontsize="small")
    axes[1].legend(title="scaled dimension")
    fig.tight_layout()
    from keras_effnet.files import atomic_path

    with atomic_path(path) as staged:
        fig.savefig(staged, format="png", dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


COLUMNS = ["φ", "method", "depth coef", "width coef", "resolution", "blocks", "params",
           "params vs compound", "MACs (B)", "MACs vs compound"]


def _display(r):
    return {"φ": r["phi"], "method": r["method"], "depth coef": r["depth"],
            "width coef": r["width"], "resolution": r["resolution"], "blocks": r["blocks"],
            "params": r["params"], "params vs compound": r["params_vs_compound"],
            "MACs (B)": r["macs"] / 1e9, "MACs vs compound": r["macs_vs_compound"]}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; this script takes flags only")
    from keras_effnet import ALPHA, BETA, GAMMA, profile, scale

    phis = sorted(set(parse_phi(FLAGS.phi, allow_empty=False)))
    try:
        for phi in phis:
            scale(phi=phi, base=FLAGS.base)
    except (ValueError, TypeError) as e:
        raise app.UsageError(str(e)) from None
    base_res = scale(phi=0, base=FLAGS.base).resolution
    rows = []
    for phi in phis:
        compound = scale(phi=phi, base=FLAGS.base)
        prof = profile(compound)
        target = prof.macs
        group = [row(phi, "compound", None, compound, prof, target)]
        for method in METHODS[1:]:
            coefficient, config, p = match_macs(method, target, FLAGS.base)
            group.append(row(phi, method, coefficient, config, p, target))
        for r in group:
            r["params_vs_compound"] = r["params"] / prof.trainable_params
        rows += group
        print(f"φ={phi:g}: " + ", ".join(
            f"{r['method']} {r['macs'] / 1e9:.3f} B MACs / {r['params'] / 1e6:.2f} M params"
            for r in group), flush=True)

    os.makedirs(FLAGS.results, exist_ok=True)
    png = os.path.join(FLAGS.results, "scaling.png")
    factor = ALPHA * BETA ** 2 * GAMMA ** 2
    anchor = profile(scale(phi=0, base=FLAGS.base)).macs
    plot(rows, phis, png, predicted={phi: factor ** phi * anchor for phi in phis})
    notes = (
        "\n\nCompound: `scale(phi=φ)` (α, β, γ = "
        f"{ALPHA}, {BETA}, {GAMMA}). depth / width / resolution: only that dimension scaled "
        f"(the others at the base's 1.0, 1.0, {base_res} px), its coefficient chosen by "
        "bisection so that MACs land nearest the compound MACs at the same φ (rounding of "
        "blocks, channels and resolution to multiples of 8 makes exact matches impossible; "
        "'MACs vs compound' is what was reached). Depth/width coef: the unrounded multiplier; "
        "blocks: MBConv blocks after rounding. params: trainable, 1000-class head. "
        "Plot: scaling.png.")
    write_results(FLAGS.results, "scaling", rows,
                  markdown_table([_display(r) for r in rows], COLUMNS) + notes,
                  base=FLAGS.base, coefficients={"alpha": ALPHA, "beta": BETA, "gamma": GAMMA},
                  plot=os.path.basename(png))


if __name__ == "__main__":
    run(main)
