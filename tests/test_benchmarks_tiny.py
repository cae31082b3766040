"""The tiny-table benchmark runs (smoke size: iris, one draw, 3 epochs, seconds)."""

import numpy as np


def test_tiny_smoke(tmp_path):
    from benchmarks.tiny import main

    frame = main(["--smoke", "--out", str(tmp_path)])
    assert set(frame["model"]) == {"LogisticRegression", "MLPClassifier", "sk-mmoe defaults"}
    text = (tmp_path / "tiny_smoke.md").read_text()
    assert "| iris | 100 | 25 |" in text and "test rows" in text


def test_tiny_selection_scores_validation_rows_only(tmp_path):
    from benchmarks.tiny import main, split

    train, valid, test = split(178, 100, seed=0)
    assert len(set(train) | set(valid) | set(test)) == len(train) + len(valid) + len(test)
    assert (len(train), len(valid), len(test)) == (100, 39, 39)
    frame = main(["--smoke", "--select", "--candidates", "no_embedding", "--out", str(tmp_path)])
    assert "sk-mmoe no_embedding" in set(frame["model"])
    assert np.all(frame["n_held"] == 25)
    assert "validation rows" in (tmp_path / "tiny_selection_smoke.md").read_text()
