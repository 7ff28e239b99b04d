"""Compound scaling as a method: the grid by measured MACs, real searches on Optuna storages
shared by real processes (and resumed after a SIGKILL), and fitting φ to a budget."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_effnet import profile, scale
from keras_effnet.search import PAPER, Candidate, coefficients, fit_budget, grid, macs_multiplier

TINY = [(3, 1, 32, 16, 1, 1, 0.25), (3, 1, 16, 24, 6, 2)]  # a two-stage base: seconds to train
DATA = "synthetic?train=64&validation=32"
SEARCH = dict(points=["1.2,1.1,1.15"], seeds=1, epochs=1, resolution=32, batch_size=32,
              grace_period=6)  # the paper's point is a reference row too: 4 trials in all
FIELDS = {"alpha", "beta", "gamma", "depth", "width", "resolution", "params", "macs",
          "activations", "val_top1_mean", "val_top1_std", "seeds", "seconds", "role", "key"}
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
WORKER = ("import sys; from keras_effnet.search import coefficients; "
          f"coefficients({TINY!r}, {DATA!r}, out=sys.argv[1], verbose=False, **{SEARCH!r})")


def test_grid_points_satisfy_the_constraint_by_measured_macs():
    points = grid("efficientnet")  # the defaults: target 2, tolerance 15 %, step 0.05
    assert (points[0].alpha, points[0].beta, points[0].gamma) == PAPER  # nearest itself
    for point in points[:30]:
        assert min(point.alpha, point.beta, point.gamma) >= 1
        assert abs(macs_multiplier("efficientnet", (point.alpha, point.beta, point.gamma)) / 2
                   - 1) <= 0.15
    # at a proxy resolution the rounding differs, and the grid is measured there
    small = grid(TINY, resolution=32, max_points=5)
    assert len(small) == 5
    assert all(abs(macs_multiplier(TINY, (p.alpha, p.beta, p.gamma), 32) / 2 - 1) <= 0.15
               for p in small)
    # one point per network: at 32 px (1.25, 1.15, 1.05), (1.25, 1.15, 1.1) and
    # (1.3, 1.15, 1.1) all round to the same repeats, channels and resolution
    lite = [p.config("lite", 32) for p in grid("lite", resolution=32)]
    networks = {(c.resolution, c.stages) for c in lite}
    assert len(networks) == len(lite)


@pytest.mark.parametrize("kwargs,match", [
    ({"tolerance": 1e-9}, r"no grid point .* within 0% of 2"),
    ({"step": 5.0}, r"no grid point \(step 5.0"),
    ({"target": 1.0}, r"target=1.0; accepted: a finite number > 1"),
    ({"max_points": 0}, r"max_points=0"),
])
def test_grid_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        grid("lite", **kwargs)


def test_search_input_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"base='lit' \(did you mean 'lite'\?\)"):
        coefficients("lit", DATA, out=str(tmp_path / "a"))
    with pytest.raises(ValueError, match=r"points: an empty list"):
        coefficients(TINY, DATA, points=[], out=str(tmp_path / "b"))
    with pytest.raises(ValueError, match=r"point '1.2,0.9,1.1': alpha, beta, gamma must be"):
        coefficients(TINY, DATA, points=["1.2,0.9,1.1"], out=str(tmp_path / "b"))
    with pytest.raises(ValueError, match=r"storage='sqlite:////nonexistent/x.db': cannot open"):
        coefficients(TINY, DATA, storage="sqlite:////nonexistent/x.db",
                     out=str(tmp_path / "c"), **SEARCH)
    from keras_effnet.data import write_image_folder

    one = tmp_path / "one_class"
    images = np.zeros((4, 32, 32, 3), "uint8")
    write_image_folder(str(one), images, np.zeros(4, "int32"), class_names=("cat",))
    with pytest.raises(ValueError, match=r"class"):
        coefficients(TINY, f"folder:{one}", out=str(tmp_path / "d"), **SEARCH)
    assert not (tmp_path / "d" / "search.db").exists()


def _trials(out):
    with sqlite3.connect(out / "search.db") as db:
        return db.execute("SELECT t.state, p.param_value FROM trials t LEFT JOIN trial_params p "
                          "ON t.trial_id = p.trial_id").fetchall()


def test_a_real_search_writes_its_report(tmp_path):
    out = tmp_path / "search"
    result = coefficients(TINY, DATA, out=str(out), **SEARCH)
    data = json.loads((out / "search.json").read_text())
    assert data == json.loads(json.dumps(result))
    assert {r["role"] for r in data["trials"]} == {"paper", "depth", "width", "resolution"}
    for row in data["trials"]:
        assert FIELDS <= set(row), FIELDS - set(row)
        assert row["macs"] == profile(Candidate(row["alpha"], row["beta"], row["gamma"])
                                      .config(TINY, 32)).macs
    means = [r["val_top1_mean"] for r in data["trials"]]
    assert data["best"]["val_top1_mean"] == max(means)
    assert data["best"]["tied_with_best"] is True
    assert "| candidate | role |" in (out / "search.md").read_text()
    assert (out / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same call again finds every trial finished and trains nothing
    before = {p: p.stat().st_mtime for p in out.rglob("summary.json")}
    assert len(before) == 4
    coefficients(TINY, DATA, out=str(out), **SEARCH)
    assert {p: p.stat().st_mtime for p in out.rglob("summary.json")} == before
    # ... and so does the same search given as settings objects
    from keras_effnet.search import ProxyTraining, SearchSpace

    coefficients(TINY, DATA, out=str(out), verbose=False, space=SearchSpace(
        points=SEARCH["points"]), training=ProxyTraining(
        **{k: v for k, v in SEARCH.items() if k not in ("points", "grace_period")}),
        grace_period=SEARCH["grace_period"])
    assert {p: p.stat().st_mtime for p in out.rglob("summary.json")} == before
    # the folder holds this search: another one is refused, naming the difference
    with pytest.raises(ValueError, match=r"holds a different search \(epochs differ\)"):
        coefficients(TINY, DATA, out=str(out), **{**SEARCH, "epochs": 2})


@pytest.mark.large  # real processes and exports: ~1 min each
def test_two_workers_share_one_study(tmp_path):
    out = tmp_path / "shared"
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(out)], env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for _ in range(2)]
    for worker in workers:
        assert worker.wait(timeout=600) == 0, worker.stderr.read().decode()[-2000:]
    states = _trials(out)
    complete = [value for state, value in states if state == "COMPLETE"]
    assert len(complete) == 4 and len(set(complete)) == 4  # each candidate ran exactly once
    assert len(list(out.rglob("summary.json"))) == 4  # and was trained once
    assert json.loads((out / "search.json").read_text())["best"]


@pytest.mark.large  # real processes and exports: ~1 min each
def test_a_killed_search_resumes_without_rerunning_finished_trials(tmp_path):
    out = tmp_path / "killed"
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(out)], env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(list(out.rglob("summary.json"))) < 1 and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(2)  # into the second trial's training
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    finished = {p: p.stat().st_mtime for p in out.rglob("summary.json")}
    assert 1 <= len(finished) < 4
    assert "RUNNING" in [state for state, _ in _trials(out)]  # the killed trial
    done = subprocess.run([sys.executable, "-c", WORKER, str(out)], env=ENV,
                          capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    for path, mtime in finished.items():
        assert path.stat().st_mtime == mtime  # not trained again
    complete = [value for state, value in _trials(out) if state == "COMPLETE"]
    assert len(complete) == 4 and len(set(complete)) == 4


def test_fit_budget_by_macs_is_the_largest_phi():
    phi, config, measured = fit_budget("lite", macs=6e8)
    assert profile(config).macs <= 6e8 == measured["limit"]
    assert profile(scale(phi=phi + 0.05, base="lite")).macs > 6e8
    assert measured["margin"] == 6e8 - profile(config).macs
    for kind in ("params", "activations"):
        limit = 2 * getattr(profile(scale(phi=0, base="lite")), "trainable_params"
                            if kind == "params" else kind)
        phi, config, measured = fit_budget("lite", **{kind: limit})
        assert phi > 0 and measured["value"] <= limit
    with pytest.raises(ValueError, match=r"below the smallest valid model"):
        fit_budget("lite", macs=1e3)
    with pytest.raises(ValueError, match=r"exactly one budget"):
        fit_budget("lite", macs=1e9, params=1e7)


@pytest.mark.large  # real processes and exports: ~1 min each
def test_fit_budget_by_measured_latency():
    """Every probe is exported to TFLite and timed in LiteRT: the φ returned was measured
    within the budget (float32 files here, to keep the test short)."""
    from keras_effnet.search import _latency_ms

    tiny = scale(phi=0, base=TINY, base_resolution=32)
    budget = 3 * _latency_ms(tiny, "none", 1, 10)
    phi, config, measured = fit_budget(TINY, latency_ms=budget, quantize="none", threads=1,
                                       base_resolution=32, num_classes=10, precision=0.25)
    assert measured["value"] <= budget and phi > 0 and config.resolution > 32


@pytest.mark.large  # trains the 4 reference rows and 2 drawn points
def test_a_continuous_search_with_tpe(tmp_path):
    result = coefficients(TINY, DATA, out=str(tmp_path / "tpe"), sampler="tpe", max_trials=2,
                          **{k: v for k, v in SEARCH.items() if k != "points"})
    drawn = [r for r in result["trials"] if r["role"] == "candidate"]
    assert len(drawn) == 2 and len(result["trials"]) == 6
    for row in drawn:
        assert abs(macs_multiplier(TINY, (row["alpha"], row["beta"], row["gamma"]), 32) / 2
                   - 1) <= 0.15
    with pytest.raises(ValueError, match=r"sampler='tpe' draws its own points"):
        coefficients(TINY, DATA, sampler="tpe", points=["1.2,1.1,1.15"], out=str(tmp_path))


def test_fit_budget_grows_phi_from_zero_not_from_the_smallest_network(capsys):
    """The smallest valid φ of lite is about −15; the search for a budget near φ = 2 must
    probe φ = 1, 2, 4 (doubling from 0), never φ = 17 (a network that does not build)."""
    phi, _, measured = fit_budget("lite", macs=1.5e9, verbose=True)
    probed = [float(line.split()[0].split("=")[1].rstrip(":")) for line in
              capsys.readouterr().out.splitlines() if line.startswith("phi=")]
    assert max(probed) <= 4.0, probed
    assert 1 < phi < 4 and measured["value"] <= 1.5e9 < measured["limit"] + 1


@pytest.mark.parametrize("grace", [0, -5, 2.5, True])
def test_a_bad_grace_period_is_refused_before_anything_runs(grace, tmp_path):
    with pytest.raises(ValueError, match=rf"grace_period={grace!r}; accepted: seconds"):
        coefficients(TINY, DATA, out=str(tmp_path / "s"), **{**SEARCH, "grace_period": grace})
    assert not (tmp_path / "s").exists()


def test_settings_objects_and_keywords_are_one_search(tmp_path):
    """`space=` / `training=` objects and today's keywords describe the same search; mixing
    both for one field, a wrong type or an unknown keyword is refused before anything runs."""
    from keras_effnet.search import ProxyTraining, SearchSpace

    space = SearchSpace(points=SEARCH["points"])
    assert space.points == tuple(SearchSpace(points=list(SEARCH["points"])).points)
    with pytest.raises(ValueError, match=r"pass epochs inside training= or as keywords"):
        coefficients(TINY, DATA, training=ProxyTraining(), epochs=2, out=str(tmp_path / "a"))
    with pytest.raises(TypeError, match=r"space=\{'target': 2\}; accepted: a SearchSpace"):
        coefficients(TINY, DATA, space={"target": 2}, out=str(tmp_path / "a"))
    with pytest.raises(TypeError, match=r"unexpected keyword\(s\) \['epoch'\] \(did you mean "
                                        r"'epochs'\?\); accepted: .*epochs"):
        coefficients(TINY, DATA, epoch=2, out=str(tmp_path / "a"))
    for bad in ({"seeds": 0}, {"batch_size": 1.5}):
        with pytest.raises(ValueError, match=f"{next(iter(bad))}="):
            ProxyTraining(**bad)
    with pytest.raises(ValueError, match=r"target=1.0; accepted: a finite number > 1"):
        SearchSpace(target=1.0)
    assert not (tmp_path / "a").exists()
