"""README.md runs as written: every ```python block, in order, and the demo's option list.

The blocks share one namespace, as a reader pasting them into one session would; a block
preceded by ``<!-- readme-test: skip (reason) -->`` is only compiled (the reason is shown).
"""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).parents[1] / "README.md"
BLOCK = re.compile(
    r"(?:<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]*)\)\s*-->\s*\n)?^```python\n(?P<code>.*?)^```",
    re.S | re.M,
)


def python_blocks():
    text = README.read_text()
    return [
        (text.count("\n", 0, match.start("code")) + 1, match["code"], match["reason"])
        for match in BLOCK.finditer(text)
    ]


def test_readme_has_blocks_that_run():
    blocks = python_blocks()
    assert len([b for b in blocks if b[2] is None]) >= 4


def test_readme_python_blocks_run_in_order(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib").use("Agg")
    monkeypatch.chdir(tmp_path)  # blocks may write files
    namespace = {"__name__": "__readme__"}
    for line, code, reason in python_blocks():
        compiled = compile(code, f"{README}:{line}", "exec")
        if reason is None:
            exec(compiled, namespace)
    # A search the README builds but does not fit must still name real parameters.
    from sklearn.model_selection import GridSearchCV

    searches = [v for v in namespace.values() if isinstance(v, GridSearchCV)]
    assert searches
    for search in searches:
        valid = search.estimator.get_params()
        assert set(search.param_grid) <= set(valid), set(search.param_grid) - set(valid)
    # The saved schedule continued after loading: ten epochs of one cosine.
    epochs = np.arange(10)
    np.testing.assert_allclose(namespace["resumed"].history_[:, "event_lr"],
                               1e-3 * (1 + np.cos(np.pi * epochs / 10)) / 2, rtol=1e-9)
    # The cluster example ran for real, every fit on the LocalCluster's workers.
    fitted = namespace["cluster_search"]
    assert len(fitted.cv_results_["params"]) == 4
    assert np.isfinite(fitted.cv_results_["mean_test_score"]).all()
    assert namespace["client"].status == "closed"


def test_skipped_blocks_give_a_reason():
    for line, _, reason in python_blocks():
        assert reason is None or len(reason.strip()) > 10, f"README.md:{line}: say why it is skipped"


def test_demo_options_listed_in_readme_match_its_help(capsys):
    from sk_mmoe.__main__ import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    offered = set(re.findall(r"(--[a-z][a-z-]+)", capsys.readouterr().out)) - {"--help"}
    sentence = re.search(r"`python -m sk_mmoe --help` lists the demo's options\s*\((.*?)\)", README.read_text(), re.S)
    assert sentence, "README must list the demo's options after `python -m sk_mmoe --help`"
    listed = set(re.findall(r"`(--[a-z-]+)`", sentence[1]))
    assert listed == offered


def test_readme_quotes_the_demo_seeds_results():
    """The README's sentence on the demo over seeds says what demo_seeds.csv holds."""
    import pandas as pd

    results = README.parent / "benchmarks" / "results"
    frame = pd.read_csv(results / "demo_seeds.csv")
    table = frame.pivot(index="seed", columns="model", values="mse_mean")
    wins = int((table.idxmin(axis=1) == "mmoe").sum())
    ratio = table["mmoe"] / table["shared_bottom"]
    sentence = re.search(
        r"MMoE had the lowest test error\s+in (\d+) of (\d+) seeds \(MMoE / Shared-Bottom\s+"
        r"([\d.]+)-([\d.]+)\)", README.read_text())
    assert sentence, "README must state the demo's seeds result"
    assert (int(sentence[1]), int(sentence[2])) == (wins, len(table))
    assert (sentence[3], sentence[4]) == (f"{ratio.min():.2f}", f"{ratio.max():.2f}")
    # demo_seeds.md is the same run as the CSV.
    report = (results / "demo_seeds.md").read_text()
    assert f"range {ratio.min():.2f}-{ratio.max():.2f}" in report
    for seed, row in table.iterrows():
        cells = " | ".join(f"{value:.3f}" for value in row)
        assert f"| {seed} | {cells} |" in report
