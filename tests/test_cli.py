"""The `effnet` console script, run as a user runs it (a real subprocess)."""

import pytest

import keras_effnet
from conftest import effnet


def test_profile_reproduces_table_2():
    result = effnet("profile", "--variants=b0,b1,b2,b3,b4,b5,b6,b7")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("efficientnet-b")]
    assert len(rows) == 8
    for row in rows:
        cols = row.split()
        assert cols[4] == cols[5]  # params == published
        assert abs(float(cols[8]) - 1) <= 0.05  # MACs / paper FLOPs
    assert "66,347,960" in result.stdout


def test_profile_phi_series_and_per_layer():
    result = effnet("profile", "--phi=0,1,2", "--base=lite", "--per_layer")
    assert result.returncode == 0, result.stderr
    assert "efficientnet-lite-phi2" in result.stdout and "block1a_dwconv" in result.stdout


def test_build_saves_a_loadable_model(tmp_path):
    out = tmp_path / "lite0.keras"
    result = effnet("build", "--variant=lite0", "--num_classes=10", "--resolution=64",
                    f"--out={out}")
    assert result.returncode == 0, result.stderr
    model = keras_effnet.load_model(out)
    assert model.output_shape == (None, 10) and model.input_shape == (None, 64, 64, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["lite0.keras"]  # no temporary leftovers


@pytest.mark.parametrize("args,message", [
    (["profile", "--phi=x"], "--phi: 'x' is not a number"),
    (["profile"], "exactly one of --variant/--variants and --phi"),
    (["build", "--variant=b9"], "unknown variant 'b9'; did you mean 'b7'"),
    (["frobnicate"], "usage: effnet {build|profile"),
    (["build", "--variant=b0", "--out=/nonexistent/dir/m.keras"], "output folder does not exist"),
])
def test_cli_errors_are_clear(args, message):
    result = effnet(*args)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
