"""The search's report: search.json (every trial, the reference rows and the best),
search.md (the table) and search.png (top-1 against MACs), each written atomically.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

from keras_effnet.files import atomic_path, write_json


def write_report(out: str, rows: list[dict[str, Any]], settings: dict[str, Any]
                 ) -> dict[str, Any]:
    """search.json, search.md and search.png, atomically; the best is the arg-max of the means,
    and rows within two standard errors of it are marked `tied_with_best`."""
    best = max(rows, key=lambda r: r["val_top1_mean"])
    for row in rows:
        n = max(1, len(row["seeds"]))
        noise = 2 * math.sqrt((best["val_top1_std"] ** 2 + row["val_top1_std"] ** 2) / n)
        row["tied_with_best"] = best["val_top1_mean"] - row["val_top1_mean"] <= noise
    ranked = sorted(rows, key=lambda r: -r["val_top1_mean"])
    result = {"settings": settings, "trials": ranked,
              "references": [r for r in ranked if r["role"] != "candidate"],
              "best": {**best, "coefficients": [best["alpha"], best["beta"], best["gamma"]]}}
    write_json(result, os.path.join(out, "search.json"))
    lines = ["| candidate | role | α | β | γ | res | params | MACs (M) | activations (M) | "
             "val top-1 (mean ± std) | seeds | tied with best | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in ranked:
        lines.append(f"| {r['key']} | {r['role']} | {r['alpha']:g} | {r['beta']:g} | "
                     f"{r['gamma']:g} | {r['resolution']} | {r['params']:,} | "
                     f"{r['macs'] / 1e6:.1f} | {r['activations'] / 1e6:.2f} | "
                     f"{r['val_top1_mean']:.3f} ± {r['val_top1_std']:.3f} | {len(r['seeds'])} | "
                     f"{'yes' if r['tied_with_best'] else 'no'} | {r['seconds']:g} |")
    lines.append(f"\nBest: {best['key']} (mean of {len(best['seeds'])} seeds). Rows marked "
                 "'tied with best' are within two standard errors of it: the seeds cannot tell "
                 "them apart.")
    with atomic_path(os.path.join(out, "search.md")) as staged, open(staged, "w",
                                                                      encoding="utf-8") as f:
        f.write(f"# Compound-scaling search: {settings['base']} on {settings['data']}\n\n"
                + "\n".join(lines) + "\n")
    plot_accuracy(ranked, os.path.join(out, "search.png"))
    return result


def plot_accuracy(rows: list[dict[str, Any]], path: str, by: str = "role",
                  groups: Sequence[str] = ("candidate", "paper", "depth", "width",
                                           "resolution")) -> None:
    """Validation top-1 (mean ± std over seeds) against MACs, one marker per group of `by`,
    written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for group, marker in zip(groups, "o*s^DPX"):
        members = sorted((r for r in rows if r[by] == group), key=lambda r: r["macs"])
        if members:
            ax.errorbar([r["macs"] / 1e6 for r in members], [r["val_top1_mean"] for r in members],
                        yerr=[r["val_top1_std"] for r in members], fmt=marker, capsize=3,
                        label=group, markersize=10 if marker == "*" else 6)
    ax.set_xlabel("MACs (M)")
    ax.set_ylabel("validation top-1 (mean ± std over seeds)")
    ax.legend()
    ax.grid(alpha=0.3)
    with atomic_path(path) as staged:
        fig.savefig(staged, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
