"""`effnet search` and `effnet budget`, the two steps of docs/search.md: alpha, beta, gamma
searched by short trainings on your data, and the largest φ whose model fits a budget."""

from __future__ import annotations

from typing import Literal

from absl.app import UsageError

from keras_effnet.cli.options import (BASE_RESOLUTION, BATCH_SIZE, DATA_SPEC, TRAINING, Flag,
                                      Quantize, Recipe, Strategy, check_data)
from keras_effnet.cli.reports import stage
from keras_effnet.errors import InvalidArgument

SEARCH_FLAGS = {
    "base": "base network whose alpha, beta, gamma to search",
    "data": f"data spec every trial trains on (required): {DATA_SPEC}",
    "points": Flag("explicit alpha,beta,gamma triples separated by ';' (e.g. "
                   "\"1.2,1.1,1.15;1.3,1.05,1.15\"); default: the grid",  # absl splits on ','
                   convert=lambda texts: [p for p in ",".join(texts or ()).split(";")
                                          if p.strip()] or None),
    "step": "grid step of alpha, beta, gamma",
    "sampler": "the paper's grid, or Optuna's TPE over the continuous box (--max_trials points)",
    "tolerance": "relative tolerance of the measured MACs multiplier around --target",
    "target": "MACs multiplier of a candidate over the base (φ = 1)",
    "max_trials": "the N grid points nearest the paper's (1.2, 1.1, 1.15), besides the 4 "
                  "reference rows",
    "seeds": "training seeds per candidate", "epochs": "training epochs of each trial",
    "resolution": "training resolution of each trial (default: the base's)",
    "batch_size": BATCH_SIZE, "recipe": TRAINING["recipe"], "strategy": TRAINING["strategy"],
    "storage": "Optuna storage URL shared by all workers (default: SQLite in --out)",
    "grace_period": "seconds without a heartbeat after which a worker's trial counts as dead "
                    "and is re-queued (a killed worker)",
    "study": "study name (default: effnet-search-<base>)", "out": "the search folder"}


def search(*, base: str = "efficientnet", data: str | None = None,
           points: list[str] | None = None, step: float = 0.05,
           sampler: Literal["grid", "tpe"] = "grid", tolerance: float = 0.15,
           target: float = 2.0, max_trials: int = 8, seeds: int = 2, epochs: int = 25,
           resolution: int | None = None, batch_size: int = 64, recipe: Recipe = "short",
           strategy: Strategy = "auto", storage: str | None = None, grace_period: int = 60,
           study: str | None = None, out: str = "runs/search") -> dict:
    """Search alpha, beta, gamma by short trainings on your data (Optuna)."""
    from keras_effnet.search import coefficients

    if data is None:  # a search ranks candidates on data: never invent it
        raise UsageError("effnet search needs --data=SPEC (folder:PATH, tfrecord:GLOB, or "
                         "synthetic for a demo)")
    check_data("data", data)
    stage("search", f"searching alpha, beta, gamma for {base} on {data} ({seeds} seeds, "
                    f"{epochs} epochs)")
    result = coefficients(
        base, data, points=points, target=target, tolerance=tolerance, step=step,
        max_trials=max_trials, seeds=seeds, epochs=epochs, resolution=resolution,
        batch_size=batch_size, recipe=recipe, storage=storage, study=study, out=out,
        strategy=strategy, sampler=sampler, grace_period=grace_period)
    best = result["best"]
    print(f"best: alpha={best['alpha']:g} beta={best['beta']:g} gamma={best['gamma']:g} "
          f"({best['role']}), val top-1 {best['val_top1_mean']:.3f} ± {best['val_top1_std']:.3f}"
          f"; {sum(r['tied_with_best'] for r in result['trials']) - 1} other(s) within the "
          "seed noise")
    stage("search", f"wrote {out}/search.json, .md and .png")
    return result


BUDGET_FLAGS = {
    "base": "base network to scale", "base_resolution": BASE_RESOLUTION,
    "num_classes": "classifier outputs",
    **{name: f"{kind} coefficient (default: the paper's {value})" for name, kind, value in (
        ("alpha", "depth", 1.2), ("beta", "width", 1.1), ("gamma", "resolution", 1.15))},
    "coefficients_from": "a search.json whose best alpha, beta, gamma to use",
    **{name: "budget: " + text for name, text in (
        ("macs", "multiply-adds (e.g. 6e8)"), ("params", "trainable parameters"),
        ("activations", "conv/dense output elements"),
        ("latency_ms", "median TFLite latency on this machine (ms)"))},
    "threads": "LiteRT threads for --latency_ms",
    "quantize": "TFLite mode whose latency --latency_ms measures"}


def budget(*, base: str = "efficientnet", base_resolution: int | None = None,
           num_classes: int = 1000, alpha: float | None = None, beta: float | None = None,
           gamma: float | None = None, coefficients_from: str | None = None,
           macs: float | None = None, params: float | None = None,
           activations: float | None = None, latency_ms: float | None = None, threads: int = 2,
           quantize: Quantize = "int8") -> tuple:
    """The largest φ whose model fits a budget (MACs, params, activations, latency)."""
    from keras_effnet.runs import read_json
    from keras_effnet.scaling import ALPHA, BETA, GAMMA
    from keras_effnet.search import fit_budget

    coefficients = [ALPHA, BETA, GAMMA]
    if coefficients_from:
        searched = read_json(coefficients_from)
        try:
            coefficients = [float(value) for value in searched["best"]["coefficients"]]
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidArgument(f"--coefficients_from={coefficients_from}: not a search.json "
                                  f"that `effnet search` wrote ({err!r})") from None
    coefficients = [value if given is None else given
                    for given, value in zip((alpha, beta, gamma), coefficients)]
    phi, config, measured = fit_budget(
        base, *coefficients, macs=macs, params=params, activations=activations,
        latency_ms=latency_ms, quantize=quantize, threads=threads,
        base_resolution=base_resolution, num_classes=num_classes,
        verbose=latency_ms is not None)
    print(f"phi = {phi:.3f} (alpha={coefficients[0]:g}, beta={coefficients[1]:g}, "
          f"gamma={coefficients[2]:g}): {measured['budget']} {measured['value']:,.4g} of "
          f"{measured['limit']:,.4g} (margin {measured['margin']:,.4g}; "
          f"phi = {measured['next_phi']:.3f} exceeds it)")
    print(config.summary())
    return phi, config, measured
