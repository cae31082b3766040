import pytest

from benchmarks.scale import INDEPENDENT, main


@pytest.mark.distributed
def test_scale_benchmark_smoke(tmp_path):
    # Starts torchrun: a `distributed` test, run by `make test-distributed`.
    ratios = main(["--smoke", "--threads", "--out", str(tmp_path)])
    assert set(ratios) == {"256:1 process, 1 thread", "256:2 ranks (gloo), 1 thread each",
                           f"256:{INDEPENDENT}", "256:1 process, 2 threads"}
    assert ratios["256:1 process, 1 thread"] == 1.0
    assert all(ratio > 0 for ratio in ratios.values())
    text = (tmp_path / "scale_smoke.md").read_text()
    assert "| 256 | 2 ranks (gloo), 1 thread each |" in text and "Load average" not in text
    assert "shared with other users' processes" in text


@pytest.mark.distributed
def test_id_column_step_time_smoke(tmp_path):
    ratios = main(["--ids", "--smoke", "--out", str(tmp_path)])
    assert set(ratios) == {"100 levels, 1 process", "4,000 levels, 1 process",
                           "100 levels, 2 ranks (gloo)", "4,000 levels, 2 ranks (gloo)",
                           "4,000 levels, 1 process, dense table (before)"}
    assert ratios["100 levels, 1 process"] == ratios["100 levels, 2 ranks (gloo)"] == 1.0
    text = (tmp_path / "scale_ids_smoke.md").read_text()
    assert "| 4,000 levels, 2 ranks (gloo) | 4,002 | dense |" in text
    assert "command (from the repository root)" in text
