from sk_mmoe.__main__ import format_table, main, run, verdict


def test_demo_trains_the_four_models():
    rows = run(correlation=0.9, n_samples=400, max_epochs=2, seed=0)
    assert [row["model"] for row in rows] == ["single_task", "shared_bottom", "omoe", "mmoe"]
    for row in rows:
        assert row["mse_task_1"] > 0 and row["mse_task_2"] > 0 and row["epochs"] <= 2
    # The shared bottom is sized to match the experts' parameter count (the paper's setup).
    params = {row["model"]: row["params"] for row in rows}
    assert max(params["shared_bottom"], params["mmoe"]) / min(params["shared_bottom"], params["mmoe"]) < 1.2
    table = format_table(rows)
    assert table.splitlines()[0].split()[:4] == ["model", "params", "epochs", "fit_s"]


def test_verdict_names_the_lowest_error_and_the_margin():
    rows = [{"model": "a", "mse_mean": 0.2}, {"model": "b", "mse_mean": 0.1}, {"model": "c", "mse_mean": 0.3}]
    assert verdict(rows) == "Lowest mean test MSE: b (0.100; next a 0.200, 100% higher)."


def test_demo_command_line(capsys):
    main(["--n-samples", "300", "--max-epochs", "1", "--correlation", "0.2"])
    out = capsys.readouterr().out
    assert "p=0.2" in out and "Lowest mean test MSE" in out
