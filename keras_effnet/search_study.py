"""The search's Optuna side: its storage (SQLite in the search folder, or any SQLAlchemy URL
that every worker reaches, with heartbeats), the grid study that workers share (each
candidate trained once), the TPE study, and the rows finished trials hold.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from keras_effnet.errors import InvalidArgument
from keras_effnet.runs import refuse_other_settings
from keras_effnet.search_space import Candidate, SearchSpace, macs_multiplier

GRACE_S = 60  # a trial whose worker has been silent this long is re-queued


def open_storage(storage: str | None, out: str, grace_period: int = GRACE_S) -> Any:
    """The Optuna storage: None = SQLite in `out`, else an SQLAlchemy URL (sqlite:///…,
    postgresql://…, mysql://…) that every worker of the search reaches. Heartbeats mark a
    killed worker's trial failed after `GRACE_S`, and it is re-queued (up to 3 times).
    (Optuna's journal-file storage has no heartbeat: a killed trial would stay "running".)"""
    import optuna

    url = storage or f"sqlite:///{os.path.abspath(os.path.join(out, 'search.db'))}"
    if not isinstance(url, str) or "://" not in url:
        raise InvalidArgument(f"storage={storage!r}; accepted: None (SQLite in the search folder) "
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
            raise InvalidArgument(f"storage={storage!r}: cannot open it ({type(err).__name__}: "
                                  f"{text.splitlines()[0][:200]})") from None


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
        raise InvalidArgument(f"storage={storage!r}: {type(err).__name__}: {err}") from None
    previous = study_.user_attrs.get("settings")
    if previous is None:
        study_.set_user_attr("settings", settings)
    else:
        refuse_other_settings(f"study {name!r}", "a search with other settings", settings,
                              previous, "use another --study or --out")
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
        raise InvalidArgument(f"TPE found fewer than {max_trials} points within {tolerance:.0%} of "
                              f"MACs x{target} in {200 * max_trials} draws: widen the tolerance")
    return list(_finished(study_).values())


def _finished(study_: Any) -> dict[str, dict[str, Any]]:
    import optuna

    found: dict[str, dict[str, Any]] = {}
    for t in study_.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        found.setdefault(t.user_attrs["key"], dict(t.user_attrs))
    return found
