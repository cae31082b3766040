"""Smoke test of benchmarks/polarization.py: the study's pipeline end to end, tiny sizes."""

import importlib
import sys
from pathlib import Path

import pandas as pd
import pytest

from census_data import CENSUS_HOME, HAVE_CENSUS, SKIP_REASON

pytest.importorskip("matplotlib")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
N_SEEDS = 1


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("polarization")
    with pytest.MonkeyPatch.context() as patch:
        # The script imports its shared helpers as `_common`, from its own folder.
        patch.syspath_prepend(str(BENCHMARKS))
        sys.modules.pop("polarization", None)
        script = importlib.import_module("polarization")
        script.main(["--smoke", "--out", str(out), "--n-seeds", str(N_SEEDS),
                     "--data-home", str(CENSUS_HOME)])
    return script, out


def test_smoke_writes_every_output(smoke_run):
    script, out = smoke_run
    pair_setting = script.FIGURE_PAIRS[0][0]
    names = ["polarization.md", "polarization_runs.csv", "polarization_summary.csv",
             "polarization_exploration.csv", "polarization_share.png",
             f"polarization_heatmap_{pair_setting}.png",
             f"polarization_history_{pair_setting}.png"]
    for name in names:
        assert (out / name).stat().st_size > 0, name
    report = (out / "polarization.md").read_text()
    for name in names[1:]:
        assert name in report
    assert "## Reproduce" in report and "- versions: sk_mmoe" in report


def test_synthetic_runs_and_summary(smoke_run):
    script, out = smoke_run
    runs = pd.read_csv(out / "polarization_runs.csv")
    synthetic = [s for s in script.STUDY if s.startswith("syn")]
    part = runs[runs["dataset"] == "synthetic"]
    # One row per setting, seed and gate_dropout.
    assert len(part) == len(synthetic) * N_SEEDS * len(script.GATE_DROPOUTS)
    assert set(part["gate_dropout"]) == set(script.GATE_DROPOUTS)
    for column in ["polarized", "n_dead", "entropy", "polarized_rows", "warning_fired",
                   "r2_task_1", "r2_task_2", "mse_task_1", "mse_task_2", "fit_s"]:
        assert part[column].notna().all(), column
    assert part["entropy"].between(0, 1).all()

    summary = pd.read_csv(out / "polarization_summary.csv")
    rows = summary[summary["dataset"] == "synthetic"]
    assert len(rows) == len(synthetic) * len(script.GATE_DROPOUTS)
    assert (rows["n_runs"] == N_SEEDS).all()
    assert rows["polarized_share"].between(0, 1).all()
    for column in ["mean_dead", "mean_entropy", "warning_share", "r2_task_1", "mse_task_2"]:
        assert column in summary.columns


def test_census_runs(smoke_run):
    if not HAVE_CENSUS:
        pytest.skip(SKIP_REASON)
    script, out = smoke_run
    runs = pd.read_csv(out / "polarization_runs.csv")
    census = [s for s in script.STUDY if s.startswith("census")]
    part = runs[runs["dataset"] == "census"]
    assert len(part) == len(census) * N_SEEDS * len(script.GATE_DROPOUTS)
    assert part["auc_income_50k"].between(0, 1).all()
    assert part["auc_never_married"].between(0, 1).all()


def test_remedies_smoke_writes_every_output(tmp_path):
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        sys.modules.pop("polarization", None)
        script = importlib.import_module("polarization")
        remedies = importlib.import_module("polarization_remedies")
        script.main(["--remedies", "--smoke", "--out", str(tmp_path)])
    names = ["polarization_remedies.md", "polarization_remedies_runs.csv",
             "polarization_remedies_search.csv", "polarization_remedies_summary.csv",
             "polarization_remedies.png"]
    for name in names:
        assert (tmp_path / name).stat().st_size > 0, name
    report = (tmp_path / "polarization_remedies.md").read_text()
    assert "## Reproduce" in report and "--remedies" in report
    runs = pd.read_csv(tmp_path / "polarization_remedies_runs.csv")
    # One row per studied setting and remedy (one seed in the smoke run).
    assert len(runs) == len(remedies.STUDY) * len(remedies.REMEDIES)
    assert set(runs["remedy"]) == {r.name for r in remedies.REMEDIES}
    for column in ["collapsed", "n_dead", "entropy", "r2_task_1", "r2_task_2", "fit_s"]:
        assert runs[column].notna().all(), column
    # The rare task's labels were thinned in training, not in the test rows.
    rare = [s for s in remedies.SEARCH if s.rare_fraction < 1][0]
    _, y_train, _, y_test = remedies.make_data(rare, 0)
    assert y_train["task_2"].notna().mean() == pytest.approx(rare.rare_fraction)
    assert y_test["task_2"].notna().all()
    uncertain = runs[runs["remedy"] == "uncertainty"]
    assert (uncertain["weight_task_1"] != 1.0).all()  # learned, not the fixed weights
