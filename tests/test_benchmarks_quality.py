"""The real-data panel benchmark runs (smoke size: one small table, 3 epochs, seconds)."""


def test_quality_panel_smoke(tmp_path):
    from benchmarks.quality import main

    main(["--smoke", "--out", str(tmp_path)])
    text = (tmp_path / "quality_smoke.md").read_text()
    assert "| penguins | species | accuracy |" in text
    assert "sk-mmoe - HGB" in text and "command (from the repository root)" in text


def test_quality_selection_smoke(tmp_path):
    from benchmarks.quality import main

    main(["--smoke", "--select", "--candidates", "defaults", "--out", str(tmp_path)])
    text = (tmp_path / "quality_selection_smoke.md").read_text()
    assert "validation" in text and "| penguins | body_mass_g | R² |" in text
