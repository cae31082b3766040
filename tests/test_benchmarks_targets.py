"""The count and amount targets benchmark runs (smoke size: one table, 3 epochs, seconds)."""


def test_targets_smoke(tmp_path):
    from benchmarks.targets import main

    main(["--smoke", "--out", str(tmp_path)])
    text = (tmp_path / "targets_smoke.md").read_text()
    assert "| CreditCard | reports | Poisson |" in text
    assert "| CreditCard | expenditure | Tweedie p=1.5 |" in text
    assert "tasks=\"auto\" inferred" in text and "command (from the repository root)" in text
    assert "threadpool_limits(1)" in text


def test_whole_number_columns_are_the_ambiguous_ones():
    import pandas as pd

    from benchmarks.targets import _whole_numbers

    assert _whole_numbers(pd.Series([0, 1, 5, 2]))
    assert _whole_numbers(pd.Series([0.0, 1.0, 3.0, None]))
    assert not _whole_numbers(pd.Series([0.0, 1.5, 3.0]))
    assert not _whole_numbers(pd.Series([0, 1, 0]))
    assert not _whole_numbers(pd.Series(["a", "b", "c"]))


def test_targets_selection_smoke(tmp_path):
    from benchmarks.targets import main

    main(["--smoke", "--select", "--candidates", "defaults", "stop_on_deviance", "--out", str(tmp_path)])
    # A round of named candidates writes its own report beside the earlier rounds'.
    text = (tmp_path / "targets_selection_stop_on_deviance_smoke.md").read_text()
    assert "**validation** rows" in text
    assert "| declared stop_on_deviance |" in text and "| squared defaults |" in text
    # Stopping on a deviance needs a declared kind: never run with squared error.
    assert "squared stop_on_deviance" not in text


def test_target_storage_smoke(tmp_path):
    from benchmarks.target_storage import main, storage

    main(["--smoke", "--out", str(tmp_path)])
    text = (tmp_path / "target_storage_smoke.md").read_text()
    # Integer species codes stay classes, and warn; the mass is a quantity.
    assert "| penguins | species | class codes | int | yes | multiclass | 1 of 1 |" in text
    assert "| penguins | body_mass_g | amount | float | yes | regression |" in text
    assert "command (from the repository root)" in text
    import pandas as pd

    assert storage(pd.Series([1, 2])) == "int" and storage(pd.Series([1.0, None])) == "float with NaN"
