"""The static benchmarks (model zoo, compound vs single-dimension scaling), run as a user runs
them: a real subprocess on a tiny configuration, checking the numbers they write."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B0_PARAMS, LITE0_PARAMS = 5_288_548, 4_652_008  # docs/reference.md, 1000 classes


def bench(script, *args):
    env = {**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2",
           "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
                          check=False)


def rows_of(path):
    with open(path) as f:
        data = json.load(f)
    assert data["machine"]["date"]
    return data, data["rows"]


@pytest.mark.parametrize("script, flags", [
    ("model_zoo.py", ("--variants", "--phi", "--results")),
    ("scaling.py", ("--phi", "--results")),
])
def test_help_exits_zero_and_lists_flags(script, flags):
    result = bench(script, "--help")
    assert result.returncode == 0, result.stderr
    for flag in flags:
        assert flag in result.stdout
    assert f"benchmarks/{script}" in result.stdout  # the docstring's usage line


@pytest.mark.parametrize("script", ["model_zoo.py", "scaling.py"])
def test_bad_phi_is_a_usage_error(script, tmp_path):
    result = bench(script, "--phi=0,x", f"--results={tmp_path}")
    assert result.returncode != 0
    assert "'x' is not a number" in result.stderr
    assert not list(tmp_path.iterdir())


def test_model_zoo_counts_match_the_reference(tmp_path):
    result = bench("model_zoo.py", "--variants=b0,lite0", "--phi=-1,0,1", "--table3=resnet50",
                   f"--results={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "model_zoo.md").is_file()
    data, rows = rows_of(tmp_path / "model_zoo.json")
    by_name = {r["name"]: r for r in rows}
    assert list(by_name) == ["efficientnet-b0", "efficientnet-lite0", "efficientnet-phi-1",
                             "efficientnet-phi0", "efficientnet-phi1"]
    b0, lite0 = by_name["efficientnet-b0"], by_name["efficientnet-lite0"]
    assert b0["params"] == b0["params_published"] == B0_PARAMS and b0["params_ratio"] == 1
    assert lite0["params"] == LITE0_PARAMS
    assert b0["macs_published"] == 0.39e9 and abs(b0["macs_ratio"] - 1) < 0.05
    assert abs(lite0["macs_ratio"] - 1) < 0.1
    phi0, phi1 = by_name["efficientnet-phi0"], by_name["efficientnet-phi1"]
    assert phi0["params"] == B0_PARAMS and phi0["macs"] == b0["macs"]
    assert phi0["macs_ratio"] == pytest.approx(1)
    assert 1.5 * phi0["macs"] < phi1["macs"] < 2.5 * phi0["macs"]
    factor = data["coefficients"]["macs_factor_per_phi"]
    assert factor == pytest.approx(1.2 * 1.1 ** 2 * 1.15 ** 2)
    assert phi1["macs_predicted"] == pytest.approx(factor * phi0["macs"])
    assert phi1["macs_ratio"] == pytest.approx(phi1["macs"] / phi1["macs_predicted"])
    assert by_name["efficientnet-phi-1"]["resolution"] == 192
    assert by_name["efficientnet-phi-1"]["macs"] < phi0["macs"]
    md = (tmp_path / "model_zoo.md").read_text()
    assert "5,288,548" in md and "efficientnet-phi1" in md
    table3 = {r["row"]: r for r in data["table3"]}
    assert list(table3) == ["baseline", "d=4", "w=2", "r=2", "compound"]
    assert table3["baseline"]["params"] == 25_583_592 and table3["baseline"]["macs_paper"] == 4.1e9
    assert table3["w=2"]["macs_ratio"] == pytest.approx(table3["w=2"]["macs"] / 14.7e9)
    assert table3["d=4"]["repeats"] == [12, 16, 24, 12] and "missed" in table3["d=4"]["note"]
    assert "## The paper's Table 3" in md and "resnet50-d1.4-w1.2-r1.4-ceil" in md
    bad = bench("model_zoo.py", "--table3=resnet", f"--results={tmp_path / 'bad'}")
    assert bad.returncode != 0 and "--table3: ['resnet']" in bad.stderr


def test_scaling_matches_macs_per_dimension(tmp_path):
    result = bench("scaling.py", "--phi=0,1,2", f"--results={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "scaling.md").is_file()
    data, rows = rows_of(tmp_path / "scaling.json")
    assert data["plot"] == "scaling.png"
    assert len(rows) == 3 * 4
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    with open(tmp_path / "scaling.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    for phi in (0, 1, 2):
        group = {r["method"]: r for r in rows if r["phi"] == phi}
        assert set(group) == {"compound", "depth", "width", "resolution"}
        compound = group["compound"]
        for method in ("depth", "width", "resolution"):
            r = group[method]
            assert abs(r["macs"] / compound["macs"] - 1) < 0.15, (phi, method, r["macs"])
            assert r["macs_vs_compound"] == pytest.approx(r["macs"] / compound["macs"])
        # Exactly one dimension moves; the others stay at B0's.
        assert group["depth"]["width"] == 1 and group["depth"]["resolution"] == 224
        assert group["width"]["depth"] == 1 and group["width"]["resolution"] == 224
        assert group["resolution"]["depth"] == group["resolution"]["width"] == 1
        assert group["resolution"]["params"] == B0_PARAMS  # resolution adds no parameters
        if phi == 0:
            assert {r["macs"] for r in group.values()} == {compound["macs"]}
        else:
            assert group["depth"]["blocks"] > compound["blocks"] > 16
            assert group["width"]["params"] > compound["params"] > B0_PARAMS
            assert group["depth"]["params"] > compound["params"]
    compound = [r for r in rows if r["method"] == "compound"]
    assert 1.5 * compound[0]["macs"] < compound[1]["macs"] < 2.5 * compound[0]["macs"]
