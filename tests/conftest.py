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
