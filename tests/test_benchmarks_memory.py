"""The memory benchmarks (X entry path, sparse X) run (smoke size, seconds per case)."""

import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_memory_benchmark_smoke(tmp_path):
    from benchmarks.memory import main

    main(["--smoke", "--out", str(tmp_path)])
    text = (tmp_path / "memory_smoke.md").read_text()
    for kind in ("ndarray", "frame", "frame_with_category"):
        assert f"| {kind} |" in text
    # fit and predict with the default embedding
    assert "| 5,000 | piecewise_linear |" in text
    assert "command (from the repository root)" in text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_sparse_benchmark_smoke(tmp_path):
    from benchmarks.sparse import main

    main(["--smoke", "--out", str(tmp_path)])
    text = (tmp_path / "sparse_smoke.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| smoke |"))
    # Same model on both paths: the final training losses agree.
    assert float(row.rstrip(" |").split("|")[-1]) < 1e-3
    assert "command (from the repository root)" in text
