"""The streaming benchmark (benchmarks/streaming.py) runs (smoke size, seconds)."""

import sys

import pytest

pytest.importorskip("pyarrow")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_streaming_benchmark_smoke(tmp_path):
    from benchmarks.streaming import main

    main(["--smoke", "--out", str(tmp_path)])
    text = (tmp_path / "streaming_smoke.md").read_text()
    assert "| ParquetSource | 20,000 |" in text and "| memory | 20,000 |" in text
    assert "command (from the repository root)" in text
