"""Staged fine-tuning (the Keras transfer-learning guide's way): the phases of a run, what each
step trains (the classifier alone, then the blocks from the top, batch norm frozen in inference
mode throughout) checked on the weights of a real run against its starting weights, full
fine-tuning (the default) for contrast, and bad settings refused."""

import numpy as np
import pytest

import keras_effnet
from keras_effnet.fine_tuning import FineTuning, Phase, cut
from keras_effnet.model import build
from keras_effnet.progressive import Progressive
from keras_effnet.train import _freeze, train

TINY = keras_effnet.scale(phi=-6, base="lite")
DATA = "synthetic?train=64&validation=16&classes=4"


def test_the_phases_split_the_epochs_and_cut_progressive_stages():
    assert FineTuning().plan(8, 16) == [Phase(0, 2, 16), Phase(2, 5, 8, 0.3),
                                        Phase(5, 8, 0, 0.3)]
    assert FineTuning().plan(1, 16) == [Phase(0, 1, 16)]  # a linear probe
    assert FineTuning().plan(2, 16) == [Phase(0, 1, 16), Phase(1, 2, 0, 0.3)]
    assert FineTuning(head_share=0.5, steps=4, backbone_rate=1).plan(12, 8) == [
        Phase(0, 6, 8), Phase(6, 8, 6), Phase(8, 10, 4), Phase(10, 11, 2), Phase(11, 12, 0)]
    stages = cut(Progressive(stages=2, start_size=32).plan(8, 64, 0.2), FineTuning().plan(8, 16))
    assert [(s.index, s.first_epoch, s.end_epoch, s.size, s.train_from, s.rate)
            for s in stages] == [(0, 0, 2, 32, 16, 1.0), (1, 2, 4, 32, 8, 0.3),
                                 (2, 4, 5, 64, 8, 0.3), (3, 5, 8, 64, 0, 0.3)]


def test_each_step_trains_the_blocks_from_the_top_with_batch_norm_frozen():
    net = build(TINY, num_classes=4, input_shape=(32, 32, 3))
    blocks = [b.name for b in TINY.blocks]
    half = len(blocks) // 2
    _freeze(net, half)
    trained = {layer.name for layer in net.layers if layer.trainable and layer.weights}
    assert trained == {layer.name for layer in net.layers if layer.weights and not isinstance(
        layer, keras_effnet.model.keras.layers.BatchNormalization) and (
        layer.name in ("top_conv", "predictions")
        or any(layer.name.startswith(b + "_") for b in blocks[half:]))}
    _freeze(net, len(blocks))
    assert {v.path.split("/")[0] for v in net.trainable_variables} == {"predictions"}
    _freeze(net, 0)
    assert "stem_conv" in {v.path.split("/")[0] for v in net.trainable_variables}
    assert not any(layer.trainable for layer in net.layers
                   if "_bn" in layer.name or layer.name.endswith("bn"))
    _freeze(net, None)
    assert len(net.trainable_variables) == len(build(TINY, num_classes=4).trainable_variables)


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """Starting weights nobody trained here on this data: a 10-class model's, saved as a file."""
    path = tmp_path_factory.mktemp("start") / "start.weights.h5"
    keras_effnet.model.keras.utils.set_random_seed(3)
    build(TINY, num_classes=10, input_shape=(32, 32, 3)).save_weights(path)
    return path


def _weights(path, classes=4):
    net = build(TINY, num_classes=classes, input_shape=(32, 32, 3))
    net.load_weights(path) if str(path).endswith(".h5") else net.set_weights(
        keras_effnet.load_model(path).get_weights())
    return {v.path: np.asarray(v) for v in net.weights}


def test_a_staged_run_trains_the_head_then_the_blocks_with_frozen_statistics(start, tmp_path):
    """Staged from a weights file with a new head: one epoch of the classifier alone, one of
    the top half of the blocks, one of all, at 0.3 of the rate; batch norm's statistics
    and scales leave the run as they came (inference mode), the stem's kernel does not."""
    summary = train(TINY, data=DATA, epochs=3, batch_size=16, resolution=32, weights=str(start),
                    skip_head=True, out=str(tmp_path / "run"), verbose=0, fine_tuning="staged")
    assert summary["fine_tuning"] == {"mode": "staged", "head_share": 0.25, "steps": 2,
                                      "backbone_rate": 0.3}
    n = len(TINY.blocks)
    assert [s["train_from"] for s in summary["stages"]] == [n, n // 2, 0]
    assert [r["train_from"] for r in summary["history"]] == [n, n // 2, 0]
    peak = 0.006 * 16 / 256  # the short recipe's fine-tuning rate, warmed up in epoch 1
    assert [r["lr"] / peak for r in summary["history"]] == pytest.approx([1, 0.15, 0], abs=0.01)
    before, after = _weights(start, 10), _weights(tmp_path / "run" / "model.keras")
    bn = [k for k in after if "_bn/" in k or k.startswith("top_bn/") or "stem_bn/" in k]
    assert bn and all(np.array_equal(before[k], after[k]) for k in bn)
    assert not np.array_equal(before["stem_conv/kernel"], after["stem_conv/kernel"])


def test_one_epoch_trains_the_classifier_alone(start, tmp_path):
    train(TINY, data=DATA, epochs=1, batch_size=16, resolution=32, weights=str(start),
          skip_head=True, out=str(tmp_path / "run"), verbose=0, fine_tuning="staged")
    before, after = _weights(start, 10), _weights(tmp_path / "run" / "model.keras")
    changed = {k for k in after if not k.startswith("predictions/")
               and not np.array_equal(before[k], after[k])}
    assert not changed


def test_full_fine_tuning_and_bad_settings(start, tmp_path):
    """The default from pretrained weights: everything trains from the first step, batch
    norm's statistics included; no stages."""
    summary = train(TINY, data=DATA, epochs=1, batch_size=16, resolution=32, weights=str(start),
                    skip_head=True, out=str(tmp_path / "run"), verbose=0)
    assert summary["fine_tuning"] == {"mode": "full"} and "stages" not in summary
    before, after = _weights(start, 10), _weights(tmp_path / "run" / "model.keras")
    assert not np.array_equal(before["block1a_project_bn/moving_mean"],
                              after["block1a_project_bn/moving_mean"])
    with pytest.raises(ValueError, match="staged fine-tuning trains a pretrained backbone"):
        train(TINY, data=DATA, epochs=2, weights=None, fine_tuning="staged",
              out=str(tmp_path / "a"))
    with pytest.raises(ValueError, match=r"fine_tuning='gradual'; accepted: full, staged"):
        train(TINY, data=DATA, epochs=2, fine_tuning="gradual", out=str(tmp_path / "b"))
    with pytest.raises(TypeError, match="fine_tuning=3"):
        train(TINY, data=DATA, epochs=2, fine_tuning=3, out=str(tmp_path / "c"))
    for bad, says in (({"head_share": 1.0}, "head_share=1.0"), ({"steps": 0}, "steps=0"),
                      ({"backbone_rate": 0}, "backbone_rate=0")):
        with pytest.raises(ValueError, match=says):
            FineTuning(**bad)
    assert not (tmp_path / "a").exists()
