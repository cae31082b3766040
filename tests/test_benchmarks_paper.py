"""Smoke runs of the paper benchmarks (benchmarks/synthetic_figure4.py, census_table.py).

Each runs its script's ``main`` with ``--smoke`` into a temporary folder, so the scripts
stay runnable; the committed results come from their full runs.
"""

import importlib
import sys
from pathlib import Path

import pandas as pd
import pytest

from census_data import CENSUS_HOME, HAVE_CENSUS, SKIP_REASON

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name, monkeypatch):
    # The scripts import their shared helpers as `_common`, from their own folder.
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    sys.modules.pop(name, None)
    return importlib.import_module(name)


def test_synthetic_figure4_smoke(tmp_path, monkeypatch):
    script = load_script("synthetic_figure4", monkeypatch)
    summary = script.main(["--smoke", "--out", str(tmp_path)])

    assert {(p, m) for p, m in zip(summary["p"], summary["model"])} == {
        (p, m) for p in script.CORRELATIONS for m in script.MODELS
    }
    runs = pd.read_csv(tmp_path / "synthetic_figure4.csv")
    final = runs[runs["stage"] == "final"]
    assert len(final) == len(script.CORRELATIONS) * len(script.MODELS) * len(
        script.SMOKE["seeds"]
    )
    assert set(runs["stage"]) == {"final", "lr_selection"}
    epochs = script.SMOKE["epochs"]
    assert {f"test_mse_epoch_{e}" for e in range(1, epochs + 1)} <= set(runs.columns)
    assert (final["test_mse"] > 0).all() and set(final["lr"]) <= set(script.LEARNING_RATES)
    assert (tmp_path / "synthetic_figure4.png").stat().st_size > 0
    text = (tmp_path / "synthetic_figure4.md").read_text()
    assert "## Paper vs ours" in text and "SMOKE RUN" in text
    for name in script.MODELS:
        assert f"| 0.5 | {name} |" in text
    assert "python benchmarks/synthetic_figure4.py --smoke --out" in text
    assert "wall time" in text and "sk_mmoe" in text


def test_synthetic_figure4_alpha_std_smoke(tmp_path, monkeypatch):
    # --alpha-std writes suffixed files (the default run's files stay untouched) and the
    # report speaks of the chosen alpha_std, not of the Figure-2 tuned default.
    script = load_script("synthetic_figure4", monkeypatch)
    script.main(["--smoke", "--alpha-std", "1", "--out", str(tmp_path)])

    for suffix in ("md", "csv", "png"):
        assert (tmp_path / f"synthetic_figure4_alpha1.{suffix}").stat().st_size > 0
        assert not (tmp_path / f"synthetic_figure4.{suffix}").exists()
    runs = pd.read_csv(tmp_path / "synthetic_figure4_alpha1.csv")
    assert runs["label_corr"].between(-1, 1).all()
    text = (tmp_path / "synthetic_figure4_alpha1.md").read_text()
    assert "SMOKE RUN" in text and "alpha_std=1" in text
    assert "alpha_std=8, n_sin=10" not in text and "frequencies of order 8" not in text
    assert "label_correlation.md" in text and "Issue target:" in text
    assert "synthetic_figure4_alpha1.png" in text
    assert "python benchmarks/synthetic_figure4.py --smoke --alpha-std 1 --out" in text


needs_census = pytest.mark.skipif(not HAVE_CENSUS, reason=SKIP_REASON)


@needs_census
def test_census_table_smoke(tmp_path, monkeypatch):
    script = load_script("census_table", monkeypatch)
    results = script.main(["--smoke", "--family", "--out", str(tmp_path),
                           "--data-home", str(CENSUS_HOME)])

    written = pd.read_csv(tmp_path / "census_table.csv")
    assert len(written) == len(results)
    expected_tasks = {1: {"income_50k", "never_married"}, 2: {"college_degree", "never_married"}}
    for group, tasks in expected_tasks.items():
        cells = written[written["group"] == group]
        assert set(cells["model"]) == set(script.ALL_MODELS)
        for model in script.ALL_MODELS:
            assert set(cells[cells["model"] == model]["task"]) == tasks
    assert written["test_auc"].between(0, 1).all()
    text = (tmp_path / "census_table.md").read_text()
    assert "## Paper vs ours" in text and "## Group 1" in text and "## Group 2" in text
    assert "python benchmarks/census_table.py --smoke --family --out" in text
    for model in script.ALL_MODELS:
        assert f"| {model} |" in text


@needs_census
def test_census_family_smoke(tmp_path, monkeypatch):
    script = load_script("census_table", monkeypatch)
    results = script.main(["--smoke", "--only-family", "--out", str(tmp_path),
                           "--data-home", str(CENSUS_HOME)])
    assert set(results["model"]) == {"MMoE", *script.FAMILY}
    text = (tmp_path / "census_table.md").read_text()
    assert "CGC, PLE and uncertainty task weights" in text and "## Paired by seed" in text
    for model in script.FAMILY:
        assert f"| {model} |" in text
