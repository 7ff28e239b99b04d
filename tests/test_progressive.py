"""Progressive learning (EfficientNetV2 §4): the schedule against the paper's Table 6, bad
settings refused before anything trains, a real staged run (sizes, regularisation and the
saved model's size in its files), and a run killed mid-stage that resumes in the same stage."""

import functools
import json
import os
import subprocess
import sys
import warnings

import pytest

import keras_effnet
from conftest import kill_after_epochs
from keras_effnet.console import cpu_host
from keras_effnet.progressive import MIN_START, PRESETS, Progressive, concern
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
    """Any model: from 128/300 of its final size (a multiple of 8, >= 48 px) to that size,
    dropout from 0.1 to its own rate; without the model's size and data, V2-S's RandAugment
    on V2-S's size line (5 at 128 px, 15 from 300 px) and no mixup."""
    stages = Progressive(stages=3).plan(epochs=7, resolution=224, dropout=0.2)
    assert [s.size for s in stages] == [96, 160, 224]
    assert [s.epochs for s in stages] == [3, 2, 2]
    assert [s.dropout for s in stages] == pytest.approx([0.1, 0.15, 0.2])
    assert [s.randaugment for s in stages] == pytest.approx(
        [15 * (size - 42) / 258 for size in (96, 160, 224)], abs=1e-3)
    assert [s.mixup for s in stages] == [0, 0, 0]
    assert [s.size for s in Progressive(stages=2).plan(4, 96, 0.0)] == [48, 96]
    assert [s.size for s in Progressive(stages=2).plan(4, 48, 0.0)] == [48, 48]
    assert [s.dropout for s in Progressive(stages=2).plan(4, 48, 0.0)] == [0.0, 0.0]
    assert [s.size for s in Progressive(stages=1).plan(1, 64, 0.2)] == [64]
    assert set(PRESETS) == {"derived", "v2-s", "v2-m", "v2-l"}


@pytest.mark.parametrize("name", sorted(TABLE6))
def test_the_derived_regularisation_meets_table_6_for_the_papers_models(name):
    """V2-S, V2-M and V2-L (their parameter counts) on ImageNet for 350 epochs: the derived
    RandAugment and mixup at the last size are Table 6's ends, V2-S's first stage its start."""
    (_, end), randaugment, mixup, _ = TABLE6[name]
    params = keras_effnet.profile(keras_effnet.scale(name)).params
    last = Progressive().plan(350, end, 0.3, params=params, images=1_281_167)[-1]
    assert (last.randaugment, last.mixup) == pytest.approx((randaugment[1], mixup[1]), abs=0.05)
    if name == "v2-s":
        assert Progressive().plan(350, 300, 0.3, params=params, images=1_281_167)[0] \
            .randaugment == pytest.approx(5, abs=0.05)


def test_the_derived_regularisation_is_weaker_for_small_models_images_and_runs():
    """Smaller models, smaller images and shorter runs on less data regularise less; a short
    run on a small data set (here: 8 epochs of the digits' 1 437 training images) not at all."""
    plan = Progressive().plan
    lite0 = keras_effnet.profile(keras_effnet.scale("lite0")).params
    s_size = keras_effnet.profile(keras_effnet.scale("v2-s")).params
    big, small = (plan(350, 300, 0.3, params=p, images=1_281_167)[-1].randaugment
                  for p in (s_size, lite0))
    assert big > small > 0
    assert plan(350, 300, 0.3, images=1_281_167)[-1].randaugment > plan(
        350, 160, 0.3, images=1_281_167)[-1].randaugment
    assert plan(350, 300, 0.3, images=1_281_167)[-1].randaugment > plan(
        40, 300, 0.3, images=50_000)[-1].randaugment > 0
    assert {(s.randaugment, s.mixup) for s in plan(8, 64, 0.1, params=lite0, images=1437)} \
        == {(0, 0)}


def test_a_schedule_that_cannot_help_is_said_in_one_line():
    """Every stage at one size (a final size at the derived start's floor) is said; so is a
    CPU, where the benchmark measured no gain; a schedule that grows, on an accelerator, not."""
    flat = Progressive().plan(4, MIN_START, 0.1)
    assert "every stage trains at 48 px" in concern(flat, accelerated=True)
    grows = Progressive().plan(4, 224, 0.2)
    assert concern(grows, accelerated=True) is None
    said = concern(grows, accelerated=False)
    assert said.startswith("progressive learning on a CPU: ") and "\n" not in said
    assert "benchmarks/results/progressive.md" in said


def test_the_cli_shows_a_warning_as_one_line(capsys, monkeypatch):
    """`effnet` shows a warning raised while a command runs as one `warning: …` line on
    stderr (Python's own format adds the source line), and leaves Python's format after."""
    from keras_effnet.cli import main

    @functools.wraps(main.COMMANDS["profile"])  # its flags
    def warns(**_):
        warnings.warn("progressive learning:\n  every stage", UserWarning)

    monkeypatch.setitem(main.COMMANDS, "profile", warns)
    before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main.main(["effnet", "profile", "--variant=lite0"]) == 0
    assert capsys.readouterr().err == "warning: progressive learning: every stage\n"
    assert warnings.showwarning is before


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
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        summary = train(keras_effnet.scale(phi=-4, base="lite"), data=DATA, epochs=2,
                        batch_size=16, resolution=40, out=str(tmp_path), progressive=schedule,
                        verbose=0)
    if cpu_host():  # said once, before training
        notices = [str(w.message) for w in said if w.category is UserWarning]
        assert len(notices) == 1 and notices[0].startswith("progressive learning on a CPU: ")
    stages = summary["stages"]
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
    stages = json.loads((out / "summary.json").read_text())["stages"]
    assert [s["size"] for s in stages] == [32, 40]


def test_the_cli_refuses_progressive_settings_without_progressive(tmp_path):
    done = subprocess.run([EFFNET, "train", "--variant=lite0", "--progressive_stages=2",
                           f"--out={tmp_path / 'run'}"], env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "--progressive_stages need(s) --progressive" in done.stderr
    assert not (tmp_path / "run").exists()
