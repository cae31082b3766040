from sk_mmoe.__main__ import format_table, main, run


def test_demo_trains_the_three_architectures():
    rows = run(correlation=0.9, n_samples=400, epochs=2, seed=0)
    assert [row["model"] for row in rows] == ["shared_bottom", "omoe", "mmoe"]
    for row in rows:
        assert row["mse_task_1"] > 0 and row["mse_task_2"] > 0
    # The shared bottom is sized to match the experts' parameter count (the paper's setup).
    params = [row["params"] for row in rows]
    assert max(params) / min(params) < 1.2
    table = format_table(rows)
    assert table.splitlines()[0].split()[:3] == ["model", "params", "fit_s"]


def test_demo_command_line(capsys):
    main(["--n-samples", "300", "--epochs", "1", "--correlation", "0.2"])
    out = capsys.readouterr().out
    assert "p=0.2" in out and "Lowest mean test MSE" in out
