"""The memory benchmark of the X entry path runs (smoke size, seconds per case)."""

import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_memory_benchmark_smoke(tmp_path):
    from benchmarks.memory import main

    main(["--smoke", "--out", str(tmp_path)])
    text = (tmp_path / "memory_smoke.md").read_text()
    for kind in ("ndarray", "frame", "frame_with_category"):
        assert f"| {kind} |" in text
    assert "command (from the repository root)" in text
