"""The one-pass statistics of a data source (sk_mmoe/_stream_stats.py): exact moments,
a uniform bin sample, and bins within the sample's rank error of the in-memory ones."""

import numpy as np
import pandas as pd
import pytest

from sk_mmoe import MMoERegressorClassifier, ParquetSource
from sk_mmoe import _stream_stats
from sk_mmoe._stream_stats import Moments, RowSample

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning", "ignore::sk_mmoe.diagnostics.GatePolarizationWarning"
)


def test_moments_merged_over_batches_equal_numpy():
    rng = np.random.default_rng(0)
    values = rng.normal(loc=1e4, scale=3.0, size=(10_000, 3))
    values[rng.random(values.shape) < 0.2] = np.nan
    values[:, 2] = rng.integers(0, 2, 10_000)
    moments = Moments(3)
    for start in range(0, 10_000, 777):
        moments.add(values[start:start + 777])
    mean, std, n_present, indicator = moments.statistics()
    np.testing.assert_allclose(mean, np.nanmean(values, axis=0), rtol=1e-13)
    np.testing.assert_allclose(std, np.nanstd(values, axis=0), rtol=1e-10)
    np.testing.assert_array_equal(n_present, (~np.isnan(values)).sum(axis=0))
    np.testing.assert_array_equal(indicator, [False, False, True])


def test_row_sample_is_uniform_and_bounded():
    sample = RowSample(1_000, 1)
    for start in range(0, 100_000, 4_096):
        sample.add(np.arange(start, min(start + 4_096, 100_000), dtype=np.float32)[:, None])
    assert sample.rows.shape == (1_000, 1) and len(np.unique(sample.rows)) == 1_000
    # A uniform sample of 0..99,999: its deciles near the population's (rank error ~1/sqrt(1000)).
    deciles = np.quantile(sample.rows[:, 0], np.linspace(0.1, 0.9, 9)) / 100_000
    np.testing.assert_allclose(deciles, np.linspace(0.1, 0.9, 9), atol=0.05)


def test_sampled_bins_within_rank_error_of_the_in_memory_bins(tmp_path, monkeypatch):
    monkeypatch.setattr(_stream_stats, "BIN_SAMPLE_ROWS", 5_000)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.lognormal(size=40_000), "t": rng.normal(size=40_000)})
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "f.parquet", row_group_size=5_000)
    params = dict(max_epochs=1, early_stopping=False, numeric_embedding="piecewise_linear")
    streamed = MMoERegressorClassifier(**params).fit(ParquetSource(tmp_path / "f.parquet", targets="t"))
    encoder = streamed._feature_encoder
    standardised = (frame["x"].to_numpy(np.float32).astype(float) - encoder.numeric_mean_[0]) / encoder.numeric_scale_[0]
    edges = encoder.bin_edges_[0][1:-1]
    ranks = np.searchsorted(np.sort(standardised), edges) / len(standardised)
    wanted = np.linspace(0, 1, 49)[1:-1]
    assert np.abs(ranks - wanted).max() < 0.03  # ~2 / sqrt(5,000)
