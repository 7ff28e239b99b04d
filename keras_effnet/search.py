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
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from keras_effnet.files import atomic_path, check_writable_dir, write_json
from keras_effnet.profile import profile
from keras_effnet.scaling import (ALPHA, BETA, GAMMA, BaseNetwork, ModelConfig, _is_int,
                                  _is_real, fold_keywords, refuse_unknown, scale)

PAPER = (ALPHA, BETA, GAMMA)
ROLES = ("paper", "depth", "width", "resolution")  # the reference rows, always evaluated


@dataclass(frozen=True)
class Candidate:
    """A point (α, β, γ); `role` is "candidate" or one of the reference rows."""

    alpha: float
    beta: float
    gamma: float
    role: str = "candidate"

    @property
    def key(self) -> str:
        return f"a{self.alpha:.4g}-b{self.beta:.4g}-g{self.gamma:.4g}"

    def config(self, base: Any, resolution: int | None = None, phi: float = 1.0) -> ModelConfig:
        """The network at `phi` (1: the search's doubling) from the base at `resolution`."""
        return scale(base=base, base_resolution=resolution, depth=self.alpha ** phi,
                     width=self.beta ** phi, resolution=self.gamma ** phi)


def macs_multiplier(base: Any, point: Sequence[float], resolution: int | None = None) -> float:
    """Measured MACs of the point's network over the base's (φ = 0), after all rounding."""
    anchor = profile(scale(phi=0, base=base, base_resolution=resolution)).macs
    return profile(Candidate(*point).config(base, resolution)).macs / anchor


def grid(base: Any = "efficientnet", *, target: float = 2.0, tolerance: float = 0.15,
         step: float = 0.05, upper: float | None = None, resolution: int | None = None,
         max_points: int | None = None) -> list[Candidate]:
    """The paper's kind of grid: α, β, γ from 1 on a `step`, α ≤ `upper` (default: the target)
    and β, γ ≤ √upper, kept where the measured MACs multiplier is within `tolerance`
    (relative) of `target`, one point per distinct network after rounding; nearest the
    paper's (1.2, 1.1, 1.15) first."""
    _check_positive("target", target, above=1.0)
    _check_positive("tolerance", tolerance)
    _check_positive("step", step)
    upper = target if upper is None else upper
    _check_positive("upper", upper, above=1.0)
    if max_points is not None and (not isinstance(max_points, int) or max_points < 1):
        raise ValueError(f"max_points={max_points!r}; accepted: None or an integer >= 1")
    anchor = profile(scale(phi=0, base=base, base_resolution=resolution)).macs

    def axis(limit: float) -> list[float]:
        return [round(1 + i * step, 6) for i in range(int((limit - 1) / step + 1e-9) + 1)]

    points, networks = [], {}
    for a in axis(upper):
        for b in axis(math.sqrt(upper)):
            for g in axis(math.sqrt(upper)):
                if abs(a * b * b * g * g / target - 1) > 3 * tolerance:  # cheap pre-filter
                    continue
                point = Candidate(a, b, g)
                config = point.config(base, resolution)
                ratio = profile(config).macs / anchor
                if abs(ratio / target - 1) <= tolerance:
                    points.append(point)
                    networks[point] = (config.resolution, config.stem_filters,
                                       config.head_filters, config.stages)
    if not points:
        raise ValueError(f"no grid point (step {step}, up to {upper}) has a measured MACs "
                         f"multiplier within {tolerance:.0%} of {target}: widen the tolerance "
                         "or refine the step")
    points.sort(key=lambda p: math.dist((p.alpha, p.beta, p.gamma), PAPER))
    # Points that round to the same network (same repeats, channels and resolution) would
    # train it again: keep the one nearest the paper's.
    seen: set = set()
    unique = [p for p in points if not (networks[p] in seen or seen.add(networks[p]))]
    return unique[:max_points]


def references(base: Any, *, target: float = 2.0, resolution: int | None = None
               ) -> list[Candidate]:
    """The paper's point and depth-, width- and resolution-only points whose measured MACs
    multiplier is nearest `target`."""
    found = [Candidate(*PAPER, role="paper")]
    for index, role in enumerate(ROLES[1:]):
        best = None
        for i in range(1, 400):  # multipliers 1.01 … 4.99, measured
            value = 1 + i / 100
            point = [1.0, 1.0, 1.0]
            point[index] = value
            try:
                ratio = macs_multiplier(base, point, resolution)
            except ValueError:
                break
            if best is None or abs(ratio - target) < abs(best[0] - target):
                best = (ratio, value)
            if ratio > 1.5 * target:
                break
        point = [1.0, 1.0, 1.0]
        point[index] = best[1]
        found.append(Candidate(*point, role=role))
    return found


def _check_positive(label: str, value: Any, above: float = 0.0) -> None:
    if not _is_real(value) or not math.isfinite(value) or value <= above:
        raise ValueError(f"{label}={value!r}; accepted: a finite number > {above:g}")


def _parse_points(points: Iterable[Any]) -> list[Candidate]:
    result = []
    for item in points:
        values = item.split(",") if isinstance(item, str) else list(item)
        try:
            a, b, g = (float(v) for v in values)
        except (TypeError, ValueError):
            raise ValueError(f"point {item!r}; accepted: three numbers alpha, beta, gamma "
                             "(e.g. '1.2,1.1,1.15')") from None
        if min(a, b, g) < 1 or not all(math.isfinite(v) for v in (a, b, g)):
            raise ValueError(f"point {item!r}: alpha, beta, gamma must be finite and >= 1")
        result.append(Candidate(a, b, g))
    if not result:
        raise ValueError("points: an empty list; give at least one alpha,beta,gamma triple")
    return result


# ---- storage -------------------------------------------------------------------------------

GRACE_S = 60  # a trial whose worker has been silent this long is re-queued


def open_storage(storage: str | None, out: str, grace_period: int = GRACE_S) -> Any:
    """The Optuna storage: None = SQLite in `out`, else an SQLAlchemy URL (sqlite:///…,
    postgresql://…, mysql://…) that every worker of the search reaches. Heartbeats mark a
    killed worker's trial failed after `GRACE_S`, and it is re-queued (up to 3 times).
    (Optuna's journal-file storage has no heartbeat: a killed trial would stay "running".)"""
    import optuna

    url = storage or f"sqlite:///{os.path.abspath(os.path.join(out, 'search.db'))}"
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"storage={storage!r}; accepted: None (SQLite in the search folder) "
                         "or an SQLAlchemy URL such as sqlite:///search.db or "
                         "postgresql://user@host/db")
    import warnings

    for attempt in range(6):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.8
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, heartbeat_interval=max(1, grace_period // 3), grace_period=grace_period,
                    heartbeat_stale_trial_callback=(
                        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)))
        except Exception as err:  # SQLAlchemy raises per-dialect errors
            text = str(err)
            # Workers started together race to create the schema: the loser opens it.
            if attempt < 5 and ("UNIQUE constraint failed" in text or "locked" in text
                                or "already exists" in text):
                time.sleep(0.5 * (attempt + 1))
                continue
            raise ValueError(f"storage={storage!r}: cannot open it ({type(err).__name__}: "
                             f"{text.splitlines()[0][:200]})") from None


# ---- step 1 --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchSpace:
    """Which points step 1 trains. With `sampler="grid"`: the grid's `max_trials` points
    nearest the paper's whose measured MACs multiplier lies within `tolerance` of `target`
    (see `grid`), or the explicit `points`; with `sampler="tpe"`: `max_trials` points drawn by
    Optuna's TPE sampler from the continuous box α ≤ target, β, γ ≤ √target, kept where the
    measured MACs fit.

    The default tolerance is 15 %: after rounding, the paper's own point measures 1.78× B0's
    MACs (1.92× nominal), 11 % under the target of 2.
    """

    target: float = 2.0
    tolerance: float = 0.15
    step: float = 0.05
    max_trials: int | None = 8
    sampler: str = "grid"
    points: tuple[Candidate, ...] | None = None

    def __post_init__(self) -> None:
        _check_positive("target", self.target, above=1.0)
        _check_positive("tolerance", self.tolerance)
        _check_positive("step", self.step)
        if self.sampler not in ("grid", "tpe"):
            raise ValueError(f"sampler={self.sampler!r}; accepted: 'grid' or 'tpe'")
        if self.max_trials is not None and not _is_count(self.max_trials):
            raise ValueError(f"max_trials={self.max_trials!r}; accepted: None or an integer >= 1")
        if self.sampler == "tpe" and (self.points is not None or self.max_trials is None):
            raise ValueError("sampler='tpe' draws its own points: give max_trials >= 1, no points")
        if self.points is not None:
            object.__setattr__(self, "points", tuple(_parse_points(self.points)))

    def candidates(self, base: Any, resolution: int) -> list[Candidate]:
        """The grid's points (or the given ones) after the reference rows, each distinct
        network once; every point is built (a clear error otherwise). TPE draws later."""
        points = [] if self.sampler == "tpe" else list(self.points or grid(
            base, target=self.target, tolerance=self.tolerance, step=self.step,
            resolution=resolution, max_points=self.max_trials))
        for point in points:
            point.config(base, resolution)
        rows = references(base, target=self.target, resolution=resolution)
        keys = {c.key for c in rows}
        return rows + [c for c in points if c.key not in keys]


@dataclass(frozen=True)
class ProxyTraining:
    """How each candidate is trained (the search's proxy, as `Recipe` is a full training's):
    `seeds` trainings of `epochs` epochs at `resolution` (None: the base's), ranked by their
    mean validation top-1."""

    seeds: int = 2
    epochs: int = 5
    resolution: int | None = None
    batch_size: int = 64
    recipe: str = "short"
    strategy: str = "auto"

    def __post_init__(self) -> None:
        for name in ("seeds", "epochs", "batch_size"):
            if not _is_count(getattr(self, name)):
                raise ValueError(f"{name}={getattr(self, name)!r}; accepted: an integer >= 1")


def _is_count(value: Any) -> bool:
    return _is_int(value) and value >= 1


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
        raise ValueError(f"grace_period={grace_period!r}; accepted: seconds, an integer >= 1")
    from keras_effnet.scaling import _resolve_base

    base_net = _resolve_base(base)
    if training.resolution is None:
        training = dataclasses.replace(training, resolution=base_net.resolution)
    base_arg = base if isinstance(base, str) else base_net
    rows = space.candidates(base_arg, training.resolution)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"cannot create the search folder {out!r}: {err}") from None
    check_writable_dir(os.path.join(out, "search.json"))
    _check_data(data, training.resolution)
    settings = {"base": base_net.name, "stages": [dataclasses.asdict(s) for s in base_net.stages],
                "data": str(data), "target": space.target, "tolerance": space.tolerance,
                "seeds": training.seeds, "epochs": training.epochs,
                "resolution": training.resolution, "batch_size": training.batch_size,
                "recipe": training.recipe, "candidates": [c.key for c in rows],
                "sampler": space.sampler,
                "max_trials": space.max_trials if space.sampler == "tpe" else None}
    _claim_folder(out, settings)
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


def _open_study(optuna: Any, name: str, db: Any, storage: str | None, keys: list[str],
                settings: dict[str, Any]) -> Any:
    """The grid study (one categorical parameter: the candidate's key), created or joined;
    a study holding another search's settings is refused, naming what differs."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study_ = optuna.create_study(study_name=name, storage=db, direction="maximize",
                                     load_if_exists=True,
                                     sampler=optuna.samplers.GridSampler({"candidate": keys},
                                                                         seed=0))
    except Exception as err:
        raise ValueError(f"storage={storage!r}: {type(err).__name__}: {err}") from None
    previous = study_.user_attrs.get("settings")
    if previous is None:
        study_.set_user_attr("settings", settings)
    elif previous != settings:
        changed = sorted(k for k in settings if settings[k] != previous.get(k))
        raise ValueError(f"study {name!r} holds a search with other settings ({', '.join(changed)}"
                         " differ): use another --study or --out")
    return study_


def _record(trial: Any, row: dict[str, Any]) -> float:
    for field, value in row.items():
        trial.set_user_attr(field, value)
    return row["val_top1_mean"]


def _run_grid(optuna: Any, study_: Any, by_key: dict[str, Candidate], run: Any,
              grace_period: int, verbose: bool) -> None:
    """Train candidates until every one is finished here or elsewhere. A candidate another
    worker holds is not run twice; while the rest runs elsewhere this worker waits, failing
    trials whose worker went silent so that they are re-queued."""

    def objective(trial: Any) -> float:
        key = trial.suggest_categorical("candidate", list(by_key))
        duplicate = [t for t in study_.get_trials(deepcopy=False,
                                                  states=(optuna.trial.TrialState.RUNNING,
                                                          optuna.trial.TrialState.COMPLETE))
                     if t.params.get("candidate") == key and t.number < trial.number]
        if duplicate:  # another worker took it first: this one is not run twice
            raise optuna.TrialPruned(f"{key} is run by trial {duplicate[0].number}")
        return _record(trial, run(by_key[key]))

    started = time.time()
    while True:
        done = _finished(study_)
        if set(by_key) <= set(done):
            return
        running = {t.params.get("candidate") for t in study_.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}
        if set(by_key) <= set(done) | running:
            time.sleep(max(1, grace_period // 3))  # the rest runs elsewhere; a dead one is re-queued
            if time.time() - started > 24 * 3600:
                return
            optuna.storages.fail_stale_trials(study_)
            continue
        study_.optimize(objective, n_trials=1, catch=())
        if verbose:
            _progress(study_, len(by_key))


def _progress(study_: Any, total: int) -> None:
    done = _finished(study_)
    best = max(done.values(), key=lambda r: r["val_top1_mean"])
    last = study_.trials[-1].user_attrs
    print(f"trial {len(done)}/{total}: {last.get('key', '(pruned)')} ({last.get('role', '-')}) "
          f"top-1 {last.get('val_top1_mean', float('nan')):.3f} | best {best['key']} "
          f"{best['val_top1_mean']:.3f}", flush=True)


def _continuous(optuna: Any, name: str, db: Any, base: Any, resolution: int,
                space: SearchSpace, run: Any, verbose: bool) -> list[dict[str, Any]]:
    """TPE over the continuous box; a drawn point whose measured MACs miss the tolerance is
    pruned at once (no training). Each worker stops when `max_trials` points are trained (N
    workers may train up to N − 1 more)."""
    study_ = optuna.create_study(study_name=f"{name}-tpe", storage=db, direction="maximize",
                                 load_if_exists=True, sampler=optuna.samplers.TPESampler(seed=0))
    target, tolerance, max_trials = space.target, space.tolerance, space.max_trials
    high = math.sqrt(target)

    def objective(trial: Any) -> float:
        point = Candidate(round(trial.suggest_float("alpha", 1.0, target), 3),
                          round(trial.suggest_float("beta", 1.0, high), 3),
                          round(trial.suggest_float("gamma", 1.0, high), 3))
        ratio = macs_multiplier(base, (point.alpha, point.beta, point.gamma), resolution)
        if abs(ratio / target - 1) > tolerance:
            raise optuna.TrialPruned(f"{point.key}: MACs x{ratio:.2f}")
        return _record(trial, run(point))

    for _ in range(200 * max_trials):  # pruned draws cost a count each, not a training
        if len(_finished(study_)) >= max_trials:
            break
        study_.optimize(objective, n_trials=1, catch=())
        if verbose and study_.trials[-1].state == optuna.trial.TrialState.COMPLETE:
            _progress(study_, max_trials)
    else:
        raise ValueError(f"TPE found fewer than {max_trials} points within {tolerance:.0%} of "
                         f"MACs x{target} in {200 * max_trials} draws: widen the tolerance")
    return list(_finished(study_).values())


def _check_data(data: str, resolution: int) -> None:
    from keras_effnet.data import load

    dataset = load(data, resolution=resolution, batch_size=8)
    if dataset.num_classes < 2:
        raise ValueError(f"data={data!r} has {dataset.num_classes} class; a search needs >= 2")


def _claim_folder(out: str, settings: dict[str, Any]) -> None:
    """Refuse to mix two searches in one folder, naming what differs."""
    import json

    path = os.path.join(out, "search_settings.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        changed = sorted(k for k in settings.keys() | previous.keys()
                         if json.loads(json.dumps(settings.get(k))) != previous.get(k))
        if changed:
            raise ValueError(f"{out!r} holds a different search ({', '.join(changed)} differ): "
                             "rerun its own command to resume it, or use another --out")
        return
    write_json(settings, path)


def _finished(study_: Any) -> dict[str, dict[str, Any]]:
    import optuna

    found: dict[str, dict[str, Any]] = {}
    for t in study_.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        found.setdefault(t.user_attrs["key"], dict(t.user_attrs))
    return found


def train_candidate(point: Candidate, base: Any, data: str, training: ProxyTraining,
                    out: str) -> dict[str, Any]:
    """Train the point's network once per seed into `out`/trials/<key>/seed<N> (a finished
    seed's summary is reused; a killed one resumes from its last epoch) and summarise it as
    a search.json row. What each search trial runs; public for benchmarks that train points
    outside a search."""
    import json

    import numpy as np

    from keras_effnet.train import train

    config = point.config(base, training.resolution)
    counts = profile(config)
    scores, started = [], time.time()
    for seed in range(training.seeds):
        folder = os.path.join(out, "trials", point.key, f"seed{seed}")
        summary_path = os.path.join(folder, "summary.json")
        if os.path.exists(summary_path):
            with open(summary_path, encoding="utf-8") as f:
                summary = json.load(f)
        else:
            summary = train(config, data=data, epochs=training.epochs,
                            batch_size=training.batch_size, recipe=training.recipe,
                            resolution=config.resolution, out=folder, seed=seed,
                            strategy=training.strategy, verbose=0)
        scores.append(summary["validation"]["accuracy"])
    return {"key": point.key, "role": point.role, "alpha": point.alpha, "beta": point.beta,
            "gamma": point.gamma, "depth": config.depth, "width": config.width,
            "resolution": config.resolution, "params": counts.trainable_params,
            "macs": counts.macs, "activations": counts.activations,
            "val_top1_mean": float(np.mean(scores)),
            "val_top1_std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
            "seeds": [float(s) for s in scores], "seconds": round(time.time() - started, 1)}


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
        raise ValueError(f"give exactly one budget of {', '.join(BUDGETS)}; got "
                         f"{given or 'none'}")
    (kind, limit), = given.items()
    _check_positive(kind, limit)
    for label, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        _check_positive(label, value, above=1.0 if label == "alpha" else 0.0)

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
        raise ValueError(f"{kind} budget {limit:,.4g} is below the smallest valid model "
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
