"""The `effnet` console script, run as a user runs it (a real subprocess)."""

import pytest

import keras_effnet
from conftest import effnet


def _table(*args):
    """{model name: columns} of an `effnet profile` table."""
    result = effnet("profile", *args)
    assert result.returncode == 0, result.stderr
    return {line.split()[0]: line.split() for line in result.stdout.splitlines()
            if line.startswith("efficientnet-")}


def test_profile_reproduces_table_2():
    rows = _table("--variants=b0,b1,b2,b3,b4,b5,b6,b7,lite0,lite4")
    assert len(rows) == 10 and rows["efficientnet-b7"][4] == "66,347,960"
    for name, cols in rows.items():
        assert cols[4] == cols[5]  # params == published
        # MACs / paper FLOPs; the Lite README's MACs count more ops (0.95-0.97, BUILD_NOTES.md)
        assert abs(float(cols[8]) - 1) <= (0.05 if "-b" in name else 0.06)


def test_profile_phi_series():
    rows = _table("--phi=0,1,2,3,4")
    assert list(rows) == [f"efficientnet-phi{k}" for k in range(5)]
    # φ = 0 is B0: its published figures sit beside it; other φ have none
    assert rows["efficientnet-phi0"][4:6] == ["5,288,548"] * 2
    assert float(rows["efficientnet-phi0"][8]) == pytest.approx(0.989, abs=0.002)
    assert rows["efficientnet-phi3"][5] == "—"
    assert [int(rows[f"efficientnet-phi{k}"][3]) for k in range(5)] == [224, 256, 296, 344, 392]
    for k in range(1, 5):  # width β^φ, depth α^φ
        assert float(rows[f"efficientnet-phi{k}"][1]) == pytest.approx(1.1 ** k, abs=1e-3)
        assert float(rows[f"efficientnet-phi{k}"][2]) == pytest.approx(1.2 ** k, abs=1e-3)
    # a released variant at another resolution: same parameters, no published MACs to compare
    assert _table("--variants=b3", "--base_resolution=112")["efficientnet-b3"][5:9] == [
        "12,233,232", "0.478", "—", "—"]


def test_profile_lite_phi_per_layer():
    result = effnet("profile", "--phi=0,1,2", "--base=lite", "--per_layer")
    assert result.returncode == 0, result.stderr
    assert "efficientnet-lite-phi2" in result.stdout and "block1a_dwconv" in result.stdout
    assert "4,652,008    4,652,008" in result.stdout  # φ = 0 of the Lite base is Lite0


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
    (["train", "--variant=lite0", "--resolution=32", "--num_classes=3", "--batch_size=8",
      "--data=synthetic?train=16&validation=8", "--out=/nonexistent/never/written"],
     "has 10 classes but num_classes=3; they must agree"),
])
def test_cli_errors_are_clear(args, message):
    result = effnet(*args)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout


def test_profile_prints_table_3_beside_the_paper():
    result = effnet("profile", "--base=resnet50", "--phi=0,1,2")
    assert result.returncode == 0, result.stderr
    rows = {" ".join(line.split()[:2]): line.split() for line in result.stdout.splitlines()
            if line.startswith("resnet50")}
    assert rows["resnet50-phi0 1.000"][4] == "25,583,592"  # the φ table
    assert rows["resnet50 baseline"][2:7] == ["resnet50-phi0", "224", "25,583,592", "3.858",
                                               "4.1"]
    assert rows["resnet50 compound"][5:7] == ["16.777", "16.7"]
    assert "resnet50 d=4: missed (-11.5 %)" in result.stdout
    alone = effnet("profile", "--base=mobilenet_v2")
    assert alone.returncode == 0, alone.stderr
    lines = [line.split() for line in alone.stdout.splitlines()
             if line.startswith("mobilenet_v2 ") and ":" not in line]  # rows, not notes
    assert [line[1] for line in lines] == ["baseline", "d=4", "w=2", "r=2", "compound"]
    assert all(0.9 <= float(line[7]) <= 1.1 for line in lines)


def test_budget_prints_phi_margin_and_config():
    result = effnet("budget", "--base=lite", "--macs=6e8")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("phi = 0.8") and "macs" in first and "margin" in first
    assert "efficientnet-lite-phi0.8" in result.stdout and "stage kind" in result.stdout
    bad = effnet("budget", "--base=lite", "--macs=1e3")
    assert bad.returncode == 2 and "below the smallest valid model" in bad.stderr
    both = effnet("budget", "--base=lite", "--macs=1e9", "--params=1e7")
    assert both.returncode == 2 and "exactly one budget" in both.stderr


def test_search_rejects_bad_points_before_training(tmp_path):
    result = effnet("search", "--base=lite", "--points=1.2,1.1", "--data=synthetic",
                    f"--out={tmp_path / 's'}")
    assert result.returncode == 2 and "point '1.2,1.1'" in result.stderr
    assert not (tmp_path / "s").exists()
    no_data = effnet("search", "--base=lite", f"--out={tmp_path / 's'}")
    assert no_data.returncode != 0 and "needs --data=SPEC" in no_data.stderr
