"""Training end to end: learning, reload, tf.distribute (mirrored and multi-worker), resume."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_effnet
from conftest import SHORT_DATA, TRAINED_VARIANTS, kill_after_epochs
from keras_effnet.data import synthetic, write_image_folder
from keras_effnet.errors import InvalidArgument
from keras_effnet.runs import RunFolder, RunSummary, choose_labels, read_json, run_summary
from keras_effnet.train import (Recipe, evaluate, make_optimizer, make_strategy,
                                precision_policy, read_history, train)

SCRIPTS = os.path.join(os.path.dirname(__file__), "scripts")
EFFNET = os.path.join(os.path.dirname(sys.executable), "effnet")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


@pytest.mark.parametrize("variant", TRAINED_VARIANTS)
def test_short_run_beats_chance_and_reloads(variant, trained):
    summary, tmp_path = trained(variant)
    epochs = summary["epochs"]
    accuracy = summary["validation"]["accuracy"]
    assert accuracy >= 0.3, summary["history"]  # 10 classes: ≥ 3× chance
    assert [row["epoch"] for row in summary["history"]] == list(range(epochs))
    reloaded = evaluate(str(tmp_path / "model.keras"), summary["data"]["spec"], batch_size=32)
    assert reloaded["top1"] == pytest.approx(accuracy, abs=1e-6)
    for name in ("model.keras", "best.keras", "history.csv", "summary.json", "logs"):
        assert (tmp_path / name).exists(), name
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["config"]["name"] == f"efficientnet-{variant}" and saved["recipe"]["name"] == "short"
    assert RunFolder(str(tmp_path)).read().to_dict() == saved  # the typed reader takes it whole
    assert not (tmp_path / "backup").exists()  # removed once training finished
    # model.keras and best.keras hold the weights only (the optimizer state lives in the
    # backup while the run goes on): the size of the weights, not 3× that with Adam's moments
    for name in ("model.keras", "best.keras"):
        saved_model = keras_effnet.load_model(str(tmp_path / name))
        weights_bytes = 4 * saved_model.count_params()
        assert os.path.getsize(tmp_path / name) < 1.3 * weights_bytes, name
        assert getattr(saved_model, "optimizer", None) is None, name
        assert saved_model.effnet_config.name == f"efficientnet-{variant}"


def test_mirrored_step_matches_single_device():
    result = subprocess.run([sys.executable, os.path.join(SCRIPTS, "mirrored_step.py")],
                            capture_output=True, text=True, timeout=600, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["moved"] > 1e-3  # the step changed the weights…
    # …identically on 2 replicas, up to float error: measured 0.4–2 % of the step (trainable)
    # and 0.5 % (BN moving statistics, relative); with unsynchronised BN the same step differed
    # by 1 500 % and 78 %.
    assert report["diff"] < 0.1 * report["moved"]
    assert report["stats_diff"] < 0.1
    assert "cannot be split evenly across 2 replicas" in report["unsplittable"]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


TINY = ["--phi=-4", "--base=lite", "--resolution=32", "--batch_size=16",
        "--data=synthetic?train=64&validation=16"]


# large: 51-70 s (two real worker processes); the mirrored step = single device stays default
@pytest.mark.large
def test_multi_worker_on_loopback(tmp_path):
    """Two workers on real files: each reads its own half of the folder."""
    images, labels = synthetic(80, 32, seed=4)
    write_image_folder(str(tmp_path / "images"), images, labels)  # 64 train / 16 held out
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    procs, logs = [], [tmp_path / f"worker{i}.log" for i in range(2)]
    for index, log in enumerate(logs):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        with open(log, "w") as out:  # files, not pipes: a full pipe would stall a worker
            procs.append(subprocess.Popen(
                [EFFNET, "train", *TINY, f"--data=folder:{tmp_path / 'images'}", "--epochs=2",
                 "--strategy=multi_worker", f"--out={tmp_path / 'run'}"],
                env={**ENV, "TF_CONFIG": json.dumps(tf_config)}, stdout=out,
                stderr=subprocess.STDOUT))
    try:
        for p in procs:
            p.wait(timeout=600)
    finally:
        for p in procs:
            p.kill()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log.read_text()[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["replicas"] == 2 and summary["strategy"].startswith("multi_worker")
    assert summary["data"]["shard"] == [2, 0] and summary["data"]["train_size"] == 64
    assert len(summary["history"]) == 2
    assert keras_effnet.load_model(tmp_path / "run" / "model.keras").input_shape == (None, 32, 32, 3)


def test_an_epoch_of_a_folder_counts_its_own_batches(tmp_path):
    """A folder's length is unknown to tf.data (a broken file is skipped as it is read), and
    Keras 3.15 then counts one empty batch more per epoch in the training metrics: with 2
    batches of 6 classes, top-5 could not pass 2/3, while an untrained model's is 5/6 (1 with
    the zero-initialised classifier's tied scores)."""
    images = np.random.default_rng(0).integers(0, 256, (160, 32, 32, 3), dtype=np.uint8)
    write_image_folder(str(tmp_path / "six"), images, np.arange(160) % 6,
                       class_names=tuple("abcdef"))
    summary = train(keras_effnet.scale(phi=-6, base="lite"), data=f"folder:{tmp_path / 'six'}",
                    epochs=1, batch_size=64, resolution=32, out=str(tmp_path / "run"),
                    verbose=0, weights=None)
    assert summary["data"]["train_size"] == 128  # 2 batches of 64
    assert summary["history"][0]["top5"] > 0.75, summary["history"]


def test_a_plain_fit_traces_its_step_once():
    """`model.fit` / `evaluate` with no strategy set: Keras 3.15 builds the optimizer and
    metrics inside the first traced step, and tf.function traces a step that creates variables
    a second time. The package's models build them first: each step is traced once, and
    training still moves the weights."""
    model = keras_effnet.build(keras_effnet.scale(phi=-6, base="lite"), num_classes=3,
                               input_shape=(32, 32, 3))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    traces = {"train": 0, "test": 0}

    def counted(kind, step):
        def traced(data):
            traces[kind] += 1
            return step(data)
        return traced

    model.train_step = counted("train", model.train_step)
    model.test_step = counted("test", model.test_step)
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    labels = np.arange(8) % 3
    before = [w.copy() for w in model.get_weights()]
    model.fit(images, labels, batch_size=4, epochs=2, verbose=0)
    assert traces == {"train": 1, "test": 0}
    assert len(model.optimizer.variables) > len(model.trainable_variables)  # Adam's moments
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])  # unbuilt
    model.evaluate(images, labels, batch_size=4, verbose=0)
    assert traces["test"] == 1

def test_killed_run_resumes_then_evaluates(tmp_path, capsys):
    """The paper recipe (RMSProp, EMA) through the CLI: killed (the `effnet` process, SIGKILL),
    resumed by the same command and evaluated (both in this process,
    `keras_effnet.cli.main.main`)."""
    from keras_effnet.cli.main import main

    out = tmp_path / "run"
    command = ["train", *TINY, "--epochs=5", "--recipe=paper", f"--out={out}"]
    history = str(out / "history.csv")
    kill_after_epochs([EFFNET, *command], history, 2, ENV)
    before = read_history(history)
    assert 2 <= len(before) < 5 and not (out / "summary.json").exists()
    capsys.readouterr()
    code = main(["effnet", *command])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr[-3000:]
    after = read_history(history)
    assert [row["epoch"] for row in after] == [0, 1, 2, 3, 4]
    # the first run's backed-up epochs are kept (its last row may be of an epoch whose backup
    # the kill interrupted: that epoch is redone)
    assert after[:len(before) - 1] == before[:-1]
    assert "validation: top-1" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["history"]) == 5
    # best.keras is the best epoch of both runs (the resumed run knew the first run's best;
    # only the epoch the kill interrupted may have missed its turn), and it holds the (EMA)
    # weights that scored it
    best = json.loads((out / "best.json").read_text())
    scores = {row["epoch"]: row["val_accuracy"] for row in after}
    assert best["val_accuracy"] == scores[best["epoch"]]
    assert best["val_accuracy"] >= max(v for e, v in scores.items() if e != len(before) - 1)
    assert evaluate(str(out / "best.keras"), TINY[-1].split("=", 1)[1],
                    batch_size=16)["top1"] == pytest.approx(best["val_accuracy"], abs=1e-6)
    assert summary["recipe"]["optimizer"] == "rmsprop" and summary["recipe"]["ema_decay"] == 0.9999
    code = main(["effnet", "eval", f"--model={out / 'model.keras'}",
                 "--data=synthetic?train=64&validation=16"])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr[-3000:]
    assert "top1:" in stdout and "top5:" in stdout


@pytest.mark.parametrize("kwargs,error,match", [
    ({"data": "webdataset:x"}, ValueError, r"unknown data spec"),
    ({"epochs": 0}, ValueError, r"epochs=0"),
    ({"batch_size": 0}, ValueError, r"batch_size=0"),
    ({"resolution": 16}, ValueError, r"input_shape=\(16, 16, 3\)"),
    ({"strategy": "horovod"}, ValueError, r"strategy='horovod'"),
    ({"mixed_precision": "int8"}, ValueError, r"mixed_precision='int8'"),
    ({"recipe": "fast"}, ValueError, r"recipe='fast'; accepted: 'paper' or 'short'"),
    ({"num_classes": 3}, ValueError, r"has 10 classes but num_classes=3; they must agree"),
])
def test_train_rejects(kwargs, error, match, tmp_path):
    args = {"data": "synthetic?train=16&validation=8", "epochs": 1, "batch_size": 8,
            "resolution": 32, "out": str(tmp_path), **kwargs}
    with pytest.raises(error, match=match):
        train("lite0", **args)


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(PermissionError, match=r"cannot create output folder"):
        train("lite0", data="synthetic?train=16&validation=8", epochs=1, batch_size=8,
              resolution=32, out=str(blocker / "run"))


def test_an_unfinished_run_is_not_resumed_with_other_settings(tmp_path):
    """(The same command resumes: the killed-run test.)"""
    args = dict(data="synthetic?train=16&validation=8", epochs=1, batch_size=8, resolution=32,
                out=str(tmp_path), verbose=0)
    # an unfinished run of 3 epochs left a checkpoint, as a killed run does
    os.makedirs(tmp_path / "backup")
    (tmp_path / "backup" / "run.json").write_text(json.dumps({"epochs": 3}))
    (tmp_path / "backup" / "training_metadata.json").write_text("{}")
    with pytest.raises(ValueError, match=r"holds an unfinished run with other settings \(.*"
                                         r"epochs.*\): rerun that run's command"):
        train("lite0", **args)
    assert (tmp_path / "backup" / "run.json").read_text() == json.dumps({"epochs": 3})


SUMMARY = {"model": "m", "config": {"name": "m"}, "recipe": {"name": "short"},
           "data": {"spec": "folder:/photos", "num_classes": 2, "class_names": ["cat", "dog"],
                    "train_size": 8, "validation_size": 2, "resolution": 32,
                    "skipped_files": [], "shard": None},
           "epochs": 1, "global_batch_size": 8, "replicas": 1, "strategy": "auto (x)",
           "mixed_precision": "float32", "seed": 0, "validation": {"accuracy": 0.5, "loss": 1.0},
           "initial_weights": None, "weights": "none (from scratch)",
           "fit_seconds_this_run": 1.5, "history": [{"epoch": 0, "loss": 1.0}],
           "artifacts": {"model": "model.keras", "best": "best.keras"}}


@pytest.mark.parametrize("change,says", [
    ({"epochs": "1"}, "(epochs='1'; accepted: an integer)"),
    ({"extra": 1}, "(unknown field(s) ['extra'])"),
    ({"model": None}, "(model=None; accepted: text)"),
    ({"data": {**SUMMARY["data"], "class_names": ["cat", "d\nog"]}},
     "(data.class_names=['cat', 'd\\nog']; accepted: num_classes=2 one-line names)"),
    ({"data": {**SUMMARY["data"], "num_classes": 3}}, "accepted: num_classes=3 one-line names"),
    ({"history": [{"epoch": "x"}]}, "(history=[{'epoch': 'x'}]; accepted: a list of objects"),
    ({"data": 7}, "(data=7; accepted: an object)"),
])
def test_a_summary_json_that_train_did_not_write_is_refused_in_one_line(change, says, tmp_path):
    run = RunFolder(str(tmp_path))
    (tmp_path / "summary.json").write_text(json.dumps({**SUMMARY, **change}))
    for read in (run.read, lambda: run_summary(str(tmp_path / "model.keras")),
                 lambda: choose_labels(run=run)):
        with pytest.raises(InvalidArgument) as caught:
            read()
        message = str(caught.value)
        assert message.startswith(f"{tmp_path / 'summary.json'}: not a summary.json that "
                                  "`effnet train` wrote (") and says in message, message
        assert "\n" not in message


def test_the_run_folder_type_round_trips_and_decides_labels(tmp_path):
    run = RunFolder(str(tmp_path))
    assert run.read() is None and choose_labels(run=run).origin == "none"
    run.write(RunSummary.from_dict(SUMMARY))
    assert json.loads((tmp_path / "summary.json").read_text()) == SUMMARY
    old = {k: v for k, v in SUMMARY.items() if k not in ("weights", "initial_weights")}
    assert RunSummary.from_dict(old).weights is None  # written before those fields
    summary, path = run_summary(str(tmp_path / "best.keras"))
    assert summary.data.class_names == ("cat", "dog") and path == run.summary_path
    assert run_summary(str(tmp_path / "other.keras")) is None  # not the run's model
    # the one rule: given, else the file's own, else the run's (of that model), else indices
    assert choose_labels(["a", "b"], ["c", "d"], run).origin == "given"
    assert choose_labels(None, ["c", "d"], run).names == ["c", "d"]
    chosen = choose_labels(run=RunFolder.beside(str(tmp_path / "bare.tflite")))
    assert (chosen.names, chosen.origin) == (["cat", "dog"], "run")
    assert chosen.source == f"{tmp_path / 'summary.json'} (the run's data)"
    assert choose_labels(run=run, model=str(tmp_path / "other.keras")).names is None
    (tmp_path / "big.json").write_text("[" + "0, " * 100 + "0]")
    with pytest.raises(InvalidArgument, match=r"big\.json: larger than 0 MiB, .*; refused"):
        read_json(str(tmp_path / "big.json"), limit=64)
    (tmp_path / "summary.json").write_text("[" * 100_000)
    with pytest.raises(InvalidArgument, match=r"summary\.json: not JSON \(maximum recursion"):
        run.read()


def test_evaluate_rejects_mismatched_classes_and_resolution(tmp_path):
    keras_effnet.save_model(keras_effnet.build("lite0", num_classes=3, input_shape=(32, 32, 3)),
                            tmp_path / "m.keras")
    with pytest.raises(ValueError, match=r"has 3 classes but data .* has 10"):
        evaluate(str(tmp_path / "m.keras"), "synthetic?train=16&validation=8", batch_size=8)
    with pytest.raises(ValueError, match=r"resolution=64 but .* takes 32x32 images"):
        evaluate(str(tmp_path / "m.keras"), "synthetic?train=16&validation=8", resolution=64)


def test_paper_recipe_as_published():
    """RMSProp(0.9, momentum 0.9, ε 1e-3), EMA 0.9999, 0.016 per 256 images scaled by the
    global batch, 5 warm-up epochs then ×0.97 every 2.4 epochs, L2 1e-5 not on batch norm."""
    model = keras_effnet.build("lite0", num_classes=4, input_shape=(32, 32, 3))
    opt = make_optimizer(Recipe.paper(), 512, 100, 30, model)  # global batch 512, 100 steps/epoch
    assert isinstance(opt, keras.optimizers.RMSprop)
    assert (opt.rho, opt.momentum, opt.epsilon) == (0.9, 0.9, 1e-3)
    assert opt.use_ema and opt.ema_momentum == 0.9999
    peak = 0.016 * 512 / 256

    def lr(step):
        opt.iterations.assign(step)
        return float(opt.learning_rate)

    assert lr(0) == pytest.approx(peak / 500) and lr(499) == pytest.approx(peak)
    for step in (500, 719, 720, 2999):  # staircase on the global step, as the reference
        assert lr(step) == pytest.approx(peak * 0.97 ** (step // 240), rel=1e-6)
    bn = [v for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
          for v in layer.trainable_weights]
    others = [v for v in model.trainable_weights if all(v is not b for b in bn)]
    expected = 1e-5 / 2 * sum(float(np.sum(np.square(v.numpy()))) for v in others)
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-4) and bn

@pytest.mark.parametrize("recipe", [Recipe.paper(), Recipe.named("short", ema_decay=0.999)])
def test_ema_follows_the_reference_decay(recipe):
    """min(decay, (1 + n) / (10 + n)) at update n, as tf.train.ExponentialMovingAverage with
    num_updates: the average tracks a short run instead of staying at the initial weights."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, use_bias=False)])
    opt = make_optimizer(recipe, 256, 10, 1, model)
    (kernel,) = model.trainable_weights
    opt.build([kernel])
    average = None
    for n in range(1, 6):
        opt.apply_gradients([(keras.ops.ones_like(kernel), kernel)])
        decay = 0.0 if n == 1 else min(recipe.ema_decay, (1 + n) / (10 + n))
        average = kernel.numpy() if average is None else (
            decay * average + (1 - decay) * kernel.numpy())
    opt.finalize_variable_values([kernel])  # what fit does at its end: the average goes in
    np.testing.assert_allclose(kernel.numpy(), average, rtol=1e-5)


def test_adam_weight_decay_is_decoupled_and_spares_batch_norm():
    model = keras_effnet.build("lite0", num_classes=4, input_shape=(32, 32, 3))
    recipe = Recipe.named("short", weight_decay=0.1)
    opt = make_optimizer(recipe, 256, 10, 1, model)
    gamma, kernel = model.get_layer("stem_bn").gamma, model.get_layer("stem_conv").kernel
    before = gamma.numpy().copy(), kernel.numpy().copy()
    opt.apply_gradients([(keras.ops.zeros_like(v), v) for v in model.trainable_weights])
    opt.iterations.assign(0)
    assert not model.losses  # no L2 in the loss with Adam
    np.testing.assert_array_equal(gamma.numpy(), before[0])
    lr = float(opt.learning_rate)  # at step 0, as the step just taken
    np.testing.assert_allclose(kernel.numpy(), before[1] * (1 - lr * 0.1), rtol=1e-5)


def test_mixed_bfloat16_training(tmp_path):
    # a small φ: bfloat16 is emulated on this CPU (slow), the point is that it runs
    summary = train(keras_effnet.scale(phi=-6, base="lite"),
                    data="synthetic?train=16&validation=8", epochs=1, batch_size=8,
                    resolution=32, mixed_precision="bfloat16", out=str(tmp_path), verbose=0)
    assert summary["mixed_precision"] == "mixed_bfloat16"
    assert summary["config"]["resolution"] == 32  # the size it trained at, not the model's 96
    assert keras.mixed_precision.global_policy().name == "float32"  # restored afterwards
    assert np.isfinite(summary["validation"]["loss"])
    # the saved model is rebuilt under the loader's policy: float32 here, for export
    model = keras_effnet.load_model(tmp_path / "model.keras")
    assert model.get_layer("top_conv").compute_dtype == "float32"
    assert model.effnet_config.resolution == 32 and model.input_shape == (None, 32, 32, 3)
    assert evaluate(str(tmp_path / "model.keras"), "synthetic?train=16&validation=8",
                    batch_size=8)["top1"] == pytest.approx(summary["validation"]["accuracy"],
                                                           abs=0.13)  # 1 of 8 images may flip


def test_strategy_and_precision_choice_on_this_machine(monkeypatch):
    # no GPU here: 'auto' is the default (one-device) strategy and float32
    assert make_strategy("auto").num_replicas_in_sync == 1
    assert precision_policy("auto") == "float32"
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match=r"strategy='multi_worker' needs the TF_CONFIG"):
        make_strategy("multi_worker")


def test_recipe_validation():
    with pytest.raises(ValueError, match=r"optimizer='lamb'"):
        Recipe(optimizer="lamb")
    with pytest.raises(ValueError, match=r"crop_area_min=0"):
        Recipe(crop_area_min=0)
    assert Recipe.paper().learning_rate == 0.016 and Recipe.paper().ema_decay == 0.9999


def test_paper_recipe_trains_each_family_at_its_papers_bn_momentum():
    """The paper recipe leaves BN momentum to the model, as `train` builds it: 0.99 for the
    2019 family, 0.9 for EfficientNetV2 (its paper); a recipe's own value overrides both."""
    assert Recipe.paper().bn_momentum is None and Recipe.short().bn_momentum == 0.9
    for config, expected in ((keras_effnet.scale(depth=0.25), 0.99),
                             (keras_effnet.scale(base="efficientnetv2", depth=0.25), 0.9)):
        for recipe, momentum in ((Recipe.paper(), expected),
                                 (Recipe.named("paper", bn_momentum=0.8), 0.8)):
            model = keras_effnet.build(config, num_classes=2, input_shape=(32, 32, 3),
                                       bn_momentum=recipe.bn_momentum)
            assert {layer.momentum for layer in model.layers
                    if isinstance(layer, keras.layers.BatchNormalization)} == {momentum}
    with pytest.raises(ValueError, match=r"bn_momentum=1.0; accepted: None or \(0, 1\)"):
        Recipe(bn_momentum=1.0)


def test_another_family_trains_with_the_recipe_set_at_build(tmp_path):
    """A narrow ResNet-50 trains through `train` (the mixed-kind table trains in
    test_int8_structure.py); the recipe's dropout, drop path and BN momentum are set when the
    model is built, the scaled config is otherwise kept."""
    base = "resnet50"
    config = keras_effnet.scale(base=base, depth=0.34, width=0.25)
    recipe = Recipe.named("short", dropout_rate=0.3, drop_path_rate=0.1, bn_momentum=0.8)
    summary = train(config, data="synthetic?train=16&validation=8", epochs=1, batch_size=8,
                    resolution=32, recipe=recipe, out=str(tmp_path), verbose=0)
    assert np.isfinite(summary["validation"]["loss"])
    built = keras_effnet.ModelConfig.from_dict(summary["config"])
    assert (built.dropout_rate, built.drop_path_rate, built.bn_momentum) == (0.3, 0.1, 0.8)
    assert built.stages == config.stages and config.dropout_rate < 0.3  # not patched
    model = keras_effnet.load_model(tmp_path / "model.keras")
    assert model.get_layer("top_dropout").rate == 0.3
    assert model.effnet_config.base == base and model.count_params() == keras_effnet.profile(
        config, num_classes=10, resolution=32).params
