"""Progressive learning (EfficientNetV2 §4): the schedule against the paper's Table 6, bad
settings refused before anything trains, a real staged run (sizes, regularisation and the
saved model's size in its files), and a run killed mid-stage that resumes in the same stage."""

import json
import os
import subprocess
import sys

import pytest

import keras_effnet
from conftest import kill_after_epochs
from keras_effnet.progressive import PRESETS, Progressive
from keras_effnet.train import read_history, train

EFFNET = os.path.join(os.path.dirname(sys.executable), "effnet")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
DATA = "synthetic?train=64&validation=16"

# docs/reference.md, "Progressive learning (EfficientNetV2, Table 6)": size, RandAugment, mixup,
# dropout
TABLE6 = {"v2-s": ((128, 300), (5, 15), (0, 0), (0.1, 0.3)),
          "v2-m": ((128, 380), (5, 20), (0, 0.2), (0.1, 0.4)),
          "v2-l": ((128, 380), (5, 25), (0, 0.4), (0.1, 0.5))}


@pytest.mark.parametrize("name", sorted(TABLE6))
def test_presets_are_the_papers_table_6(name):
    size, randaugment, mixup, dropout = TABLE6[name]
    stages = Progressive.preset(name).plan(epochs=350, resolution=384, dropout=0.2)
    assert len(stages) == 4 and stages[0].first_epoch == 0 and stages[-1].end_epoch == 350
    assert all(a.end_epoch == b.first_epoch for a, b in zip(stages, stages[1:]))
    assert sorted(s.epochs for s in stages) == [87, 87, 88, 88]
    for field, (low, high) in (("size", size), ("randaugment", randaugment),
                               ("mixup", mixup), ("dropout", dropout)):
        values = [getattr(s, field) for s in stages]
        assert (values[0], values[-1]) == pytest.approx((low, high)), field
        steps = [b - a for a, b in zip(values, values[1:])]  # linear: equal steps
        assert max(steps) - min(steps) <= (1.0 if field == "size" else 1e-5), (field, values)


def test_a_derived_schedule_follows_the_model():
    """Any model: from 128/300 of its final size (a multiple of 8, >= 32) to that size, dropout
    from 0.1 to its own rate, V2-S's RandAugment and mixup."""
    stages = Progressive(stages=3).plan(epochs=7, resolution=224, dropout=0.2)
    assert [s.size for s in stages] == [96, 160, 224]
    assert [s.epochs for s in stages] == [3, 2, 2]
    assert [s.dropout for s in stages] == pytest.approx([0.1, 0.15, 0.2])
    assert [s.randaugment for s in stages] == pytest.approx([5, 10, 15])
    assert [s.size for s in Progressive(stages=2).plan(4, 48, 0.0)] == [32, 48]
    assert [s.dropout for s in Progressive(stages=2).plan(4, 48, 0.0)] == [0.0, 0.0]
    assert [s.size for s in Progressive(stages=1).plan(1, 64, 0.2)] == [64]
    assert set(PRESETS) == {"derived", "v2-s", "v2-m", "v2-l"}


@pytest.mark.parametrize("progressive,epochs,match", [
    (Progressive(start_size=96), 4, r"start size 96 is above the final size 64"),
    (Progressive(stages=5), 4, r"in 5 stages needs at least 5 epochs; got epochs=4"),
    ("v2-xl", 4, r"preset 'v2-xl'; accepted: derived, v2-s, v2-m, v2-l"),
    (3, 4, r"progressive=3; accepted: None, True, a preset name"),
])
def test_bad_settings_are_refused_before_training(progressive, epochs, match, tmp_path):
    with pytest.raises((ValueError, TypeError), match=match):
        train("lite0", data=DATA, epochs=epochs, batch_size=16, resolution=64,
              out=str(tmp_path / "run"), progressive=progressive)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kwargs,match", [
    ({"stages": 0}, r"stages=0; accepted: an integer >= 1"),
    ({"start_size": 100, "end_size": 64}, r"start_size=100 is above its end_size=64"),
    ({"start_size": 16}, r"start_size=16; accepted: None or an integer >= 32"),
    ({"mixup": (0, 2)}, r"mixup=\(0, 2\); accepted: \(start, end\) in \[0, 1\]"),
    ({"dropout": (0.1, 1.0)}, r"dropout=\(0.1, 1.0\); accepted"),
])
def test_bad_schedules_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Progressive(**kwargs)


def test_a_staged_run_grows_size_and_regularisation(tmp_path):
    """Two stages of one epoch: 32 then 40 px, mixup and dropout growing; every epoch's
    history row says what it trained with; the saved models take the final 40 px."""
    schedule = Progressive(stages=2, start_size=32, mixup=(0.0, 0.2), dropout=(0.1, 0.3))
    summary = train(keras_effnet.scale(phi=-4, base="lite"), data=DATA, epochs=2,
                    batch_size=16, resolution=40, out=str(tmp_path), progressive=schedule,
                    verbose=0)
    stages = summary["progressive"]["stages"]
    assert [(s["size"], s["dropout"], s["mixup"]) for s in stages] == [(32, 0.1, 0.0),
                                                                      (40, 0.3, 0.2)]
    assert all(s["seconds"] > 0 and 0 <= s["val_accuracy"] <= 1 for s in stages)
    assert json.loads((tmp_path / "stages.json").read_text()) == stages
    history = read_history(str(tmp_path / "history.csv"))
    assert [(r["epoch"], r["image_size"], r["mixup"]) for r in history] == [(0, 32, 0.0),
                                                                           (1, 40, 0.2)]
    for name in ("model.keras", "best.keras"):
        assert keras_effnet.load_model(tmp_path / name).input_shape == (None, 40, 40, 3)
    assert summary["progressive"]["schedule"]["stages"] == 2


@pytest.mark.large  # two real processes: ~1.5 min
def test_a_run_killed_mid_stage_resumes_in_that_stage(tmp_path):
    """Two stages of 2 epochs through the CLI, killed after the first epoch (mid-stage 1):
    the rerun trains epoch 2 at stage 1's size and regularisation, then stage 2's."""
    out = tmp_path / "run"
    command = [EFFNET, "train", "--variant=lite0", "--resolution=40", "--batch_size=16",
               f"--data={DATA}", "--epochs=4", "--progressive", "--progressive_stages=2",
               "--progressive_start=32", "--recipe=paper", "--weights=none", f"--out={out}"]
    history = str(out / "history.csv")
    kill_after_epochs(command, history, 1, ENV)
    assert len(read_history(history)) == 1 and not (out / "stages.json").exists()
    second = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    rows = read_history(history)
    assert [(r["epoch"], r["stage"], r["image_size"]) for r in rows] == [
        (0, 0, 32), (1, 0, 32), (2, 1, 40), (3, 1, 40)]
    assert [r["dropout"] for r in rows] == pytest.approx([0.1, 0.1, 0.2, 0.2])
    assert "stage 1: epochs 1-2 at 32 px" in second.stdout
    assert "stage 2: epochs 3-4 at 40 px" in second.stdout
    stages = json.loads((out / "summary.json").read_text())["progressive"]["stages"]
    assert [s["size"] for s in stages] == [32, 40]


def test_the_cli_refuses_progressive_settings_without_progressive(tmp_path):
    done = subprocess.run([EFFNET, "train", "--variant=lite0", "--progressive_stages=2",
                           f"--out={tmp_path / 'run'}"], env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "--progressive_stages need(s) --progressive" in done.stderr
    assert not (tmp_path / "run").exists()
