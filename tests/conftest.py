"""Shared fixtures. Tests run on CPU at small resolutions; see DESIGN.md's conventions."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def pixels():
    """Random RGB pixels in [0, 255], as the models expect."""
    def make(batch, height, width=None, seed=0):
        rng = np.random.default_rng(seed)
        return rng.uniform(0, 255, (batch, height, width or height, 3)).astype("float32")
    return make


SHORT_DATA = "synthetic?train=960&validation=240"
_TRAINED = {}


def trained_variant(variant):
    """A test parameter for a variant that uses `trained(variant)`: under pytest-xdist all such
    tests run in one worker (`--dist loadgroup`), which trains that variant once."""
    return pytest.param(variant, marks=pytest.mark.xdist_group(f"trained-{variant}"))


TRAINED_VARIANTS = [trained_variant("lite0"), trained_variant("b0")]


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Train a variant once per session (short recipe, synthetic set, 48 px, 12 epochs);
    returns (summary, output folder). Shared by the training and export tests."""
    def get(variant):
        if variant not in _TRAINED:
            from keras_effnet.train import train

            out = tmp_path_factory.mktemp(f"trained-{variant}")
            summary = train(variant, data=SHORT_DATA, epochs=12, batch_size=32, resolution=48,
                            out=str(out), verbose=0)
            _TRAINED[variant] = (summary, out)
        return _TRAINED[variant]
    return get
