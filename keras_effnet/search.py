"""Compound scaling as a method (paper §3.3), on the user's own base, data and budget.

Step 1, `coefficients`: fix φ = 1 and search α, β, γ ≥ 1 under α·β²·γ² ≈ 2 by short real
trainings (`keras_effnet.train.train`) on the user's data. Each candidate is one Optuna trial
(all its seeds inside); the study lives in an Optuna storage (SQLite in the search folder by
default, any SQLAlchemy URL to share it across hosts), so a killed search resumes and N
workers running the same command share the work. Step 2, `fit_budget`: keep α, β, γ and find
the largest φ whose MACs, parameters, activations or measured TFLite latency fit a budget.

The grid keeps only points whose *measured* MACs multiplier (counted by `profile` after every
rounding, at the proxy resolution) lies within the tolerance of the target. The paper's point
and the three single-dimension points at the same MACs are always evaluated beside it.

Example:
    >>> from keras_effnet.search import coefficients, fit_budget
    >>> result = coefficients("lite", "folder:/data/mine", resolution=64, epochs=5, seeds=2)
    >>> phi, config = fit_budget("lite", *result["best"]["coefficients"], macs=600e6)
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Sequence

from keras_effnet.errors import InvalidArgument
from keras_effnet.profile import profile
from keras_effnet.runs import RunFolder, RunSummary, claim_settings, prepare_folder
from keras_effnet.catalogue import resolve_base
from keras_effnet.checks import check_positive, fold_keywords, refuse_unknown
from keras_effnet.scaling import ALPHA, BETA, GAMMA, BaseNetwork, ModelConfig, scale
from keras_effnet.search_report import plot_accuracy, write_report
from keras_effnet.search_space import (PAPER, ROLES, Candidate, ProxyTraining, SearchSpace,
                                       _is_count, grid, macs_multiplier,
                                       references)
from keras_effnet.search_study import (GRACE_S, _continuous, _finished, _open_study, _run_grid,
                                       open_storage)


def coefficients(base: str | BaseNetwork | Sequence[Any], data: str, *,
                 space: SearchSpace | None = None, training: ProxyTraining | None = None,
                 storage: str | None = None, study: str | None = None,
                 out: str = "runs/search", grace_period: int = GRACE_S,
                 verbose: bool = True, **options: Any) -> dict[str, Any]:
    """Step 1: train every candidate of `space` and the reference rows as `training` says;
    rank them by mean validation top-1. The fields of both objects are also accepted as
    keywords (`coefficients("lite", data, epochs=5, max_trials=8)`). `data` has no default: a
    search ranks candidates on the user's data, never on invented images (pass "synthetic"
    for a demo). Writes `out`/search.json, .md, .png; returns the search.json content.
    Re-running the same call resumes; another process running it with the same `storage` and
    `study` shares the work; a trial whose worker is silent for `grace_period` seconds
    (killed) is re-queued.
    """
    import optuna

    space = fold_keywords(SearchSpace, space, options, "space")
    training = fold_keywords(ProxyTraining, training, options, "training")
    refuse_unknown("coefficients", options, [f.name for kind in (SearchSpace, ProxyTraining)
                                             for f in dataclasses.fields(kind)]
                   + ["storage", "study", "out", "grace_period", "verbose"])
    if not _is_count(grace_period):
        raise InvalidArgument(f"grace_period={grace_period!r}; accepted: seconds, an integer >= 1")
    base_net = resolve_base(base)
    if training.resolution is None:
        training = dataclasses.replace(training, resolution=base_net.resolution)
    base_arg = base if isinstance(base, str) else base_net
    rows = space.candidates(base_arg, training.resolution)
    prepare_folder(out, "the search folder")
    _check_data(data, training.resolution)
    settings = {"base": base_net.name, "stages": [dataclasses.asdict(s) for s in base_net.stages],
                "data": str(data), "target": space.target, "tolerance": space.tolerance,
                "seeds": training.seeds, "epochs": training.epochs,
                "resolution": training.resolution, "batch_size": training.batch_size,
                "recipe": training.recipe, "candidates": [c.key for c in rows],
                "sampler": space.sampler,
                "max_trials": space.max_trials if space.sampler == "tpe" else None}
    claim_settings(os.path.join(out, "search_settings.json"), settings, "a different search",
                   "rerun its own command to resume it, or use another --out")
    name = study or f"effnet-search-{base_net.name}"
    db = open_storage(storage, out, grace_period)
    study_ = _open_study(optuna, name, db, storage, [c.key for c in rows], settings)
    by_key = {c.key: c for c in rows}

    def run(point: Candidate) -> dict[str, Any]:
        return train_candidate(point, base_arg, data, training, out)

    _run_grid(optuna, study_, by_key, run, grace_period, verbose)
    rows = [_finished(study_)[k] for k in by_key]
    if space.sampler == "tpe":
        rows += _continuous(optuna, name, db, base_arg, training.resolution, space, run,
                            verbose)
    return write_report(out, rows, settings)


def _check_data(data: str, resolution: int) -> None:
    from keras_effnet.data import load

    dataset = load(data, resolution=resolution, batch_size=8)
    if dataset.num_classes < 2:
        raise InvalidArgument(f"data={data!r} has {dataset.num_classes} class; a search needs "
                              ">= 2")


def train_candidate(point: Candidate, base: Any, data: str, training: ProxyTraining,
                    out: str) -> dict[str, Any]:
    """Train the point's network once per seed into `out`/trials/<key>/seed<N> (a finished
    seed's summary is reused; a killed one resumes from its last epoch) and summarise it as
    a search.json row. What each search trial runs; public for benchmarks that train points
    outside a search."""
    import numpy as np

    from keras_effnet.train import train

    config = point.config(base, training.resolution)
    counts = profile(config)
    scores, started = [], time.time()
    for seed in range(training.seeds):
        folder = os.path.join(out, "trials", point.key, f"seed{seed}")
        summary = RunFolder(folder).read() or RunSummary.from_dict(train(
            config, data=data, epochs=training.epochs, batch_size=training.batch_size,
            recipe=training.recipe, resolution=config.resolution, out=folder, seed=seed,
            strategy=training.strategy, verbose=0))
        scores.append(summary.validation["accuracy"])
    return {"key": point.key, "role": point.role, "alpha": point.alpha, "beta": point.beta,
            "gamma": point.gamma, "depth": config.depth, "width": config.width,
            "resolution": config.resolution, "params": counts.trainable_params,
            "macs": counts.macs, "activations": counts.activations,
            "val_top1_mean": float(np.mean(scores)),
            "val_top1_std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
            "seeds": [float(s) for s in scores], "seconds": round(time.time() - started, 1)}


# ---- step 2 --------------------------------------------------------------------------------

BUDGETS = ("macs", "params", "activations", "latency_ms")


def fit_budget(base: Any = "efficientnet", alpha: float = ALPHA, beta: float = BETA,
               gamma: float = GAMMA, *, macs: float | None = None, params: float | None = None,
               activations: float | None = None, latency_ms: float | None = None,
               quantize: str = "int8", threads: int = 2, base_resolution: int | None = None,
               num_classes: int = 1000, precision: float = 0.01,
               verbose: bool = False) -> tuple[float, ModelConfig, dict[str, Any]]:
    """Step 2: the largest φ (to `precision`) whose network fits the budget, with its config
    and what was measured. Exactly one budget: `macs`, `params`, `activations` (counted) or
    `latency_ms` (each probe exported to TFLite `quantize` and timed in LiteRT with `threads`
    threads on this machine: measured, never extrapolated)."""
    given = {k: v for k, v in (("macs", macs), ("params", params),
                               ("activations", activations), ("latency_ms", latency_ms))
             if v is not None}
    if len(given) != 1:
        raise InvalidArgument(f"give exactly one budget of {', '.join(BUDGETS)}; got "
                              f"{given or 'none'}")
    (kind, limit), = given.items()
    check_positive(kind, limit)
    for label, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        check_positive(label, value, above=1.0 if label == "alpha" else 0.0)

    def measure(phi: float) -> tuple[float, ModelConfig]:
        config = scale(phi=phi, base=base, alpha=alpha, beta=beta, gamma=gamma,
                       base_resolution=base_resolution)
        if kind == "latency_ms":
            value = _latency_ms(config, quantize, threads, num_classes)
        else:
            counts = profile(config, num_classes=num_classes)
            value = {"macs": counts.macs, "params": counts.trainable_params,
                     "activations": counts.activations}[kind]
        if verbose:
            print(f"phi={phi:.3f}: {kind} {value:,.4g} (budget {limit:,.4g})", flush=True)
        return value, config

    def valid(phi: float) -> bool:
        try:
            scale(phi=phi, base=base, alpha=alpha, beta=beta, gamma=gamma,
                  base_resolution=base_resolution)
            return True
        except ValueError:
            return False

    low = 0.0
    while valid(low - 1):
        low -= 1  # the smallest valid φ, to whole steps …
    step = 1.0
    while step > precision:  # … then finer
        step /= 2
        if valid(low - step):
            low -= step
    value, config = measure(low)
    if value > limit:
        raise InvalidArgument(f"{kind} budget {limit:,.4g} is below the smallest valid model "
                              f"(φ = {low:.2f}: {value:,.4g})")
    fits, fits_config, fits_value = low, config, value
    high = max(low + 1.0, 1.0)
    while True:  # grow until over the budget: φ = 1, 2, 4, 8, … (doubling from 0, not from
        value, config = measure(high)  # the smallest valid φ, which may be −15: φ = 17
        if value > limit:              # would not even build)
            break
        fits, fits_config, fits_value = high, config, value
        high += max(1.0, high - max(low, 0.0))
    while high - fits > precision:
        middle = (fits + high) / 2
        value, config = measure(middle)
        if value <= limit:
            fits, fits_config, fits_value = middle, config, value
        else:
            high = middle
    return fits, fits_config, {"budget": kind, "limit": limit, "value": fits_value,
                               "margin": limit - fits_value, "next_phi": high}


def _latency_ms(config: ModelConfig, quantize: str, threads: int, num_classes: int) -> float:
    """Median single-image latency of the config's TFLite file. The calibration images of an
    int8 probe are random pixels: they set scales, not speed, and the file is thrown away."""
    import tempfile

    import numpy as np

    from keras_effnet.model import build
    from keras_effnet.export.runtime import TFLiteRunner, median_latency_ms
    from keras_effnet.export.tflite import convert

    model = build(config, num_classes=num_classes)
    images = np.random.default_rng(0).uniform(
        0, 255, (8, config.resolution, config.resolution, 3)).astype("float32")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.tflite")
        with open(path, "wb") as f:
            f.write(convert(model, quantize, images if quantize == "int8" else None, 8,
                            bias_correction=False))  # biases do not change the speed
        return float(median_latency_ms(TFLiteRunner(path, threads), images[0], 30))


__all__ = ["BUDGETS", "Candidate", "GRACE_S", "PAPER", "ProxyTraining", "ROLES", "SearchSpace",
           "coefficients", "fit_budget", "grid", "macs_multiplier", "open_storage",
           "plot_accuracy", "references", "train_candidate", "write_report"]
