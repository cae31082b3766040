"""Larger than memory: fit from Parquet (``ParquetSource``) against the in-memory fit, rows per
second and peak memory.

    python benchmarks/streaming.py                    # 1M rows, both paths (results/streaming.md)
    python benchmarks/streaming.py --rows 10000000 --stream-only   # 10M rows, streamed only
    python benchmarks/streaming.py --smoke            # 20,000 rows: checks the script runs

The data: 20 feature columns (16 numeric float32 with NaN in two, two string columns of
10 and 100 levels, an integer ID column of 10,000 levels taken as categorical, a 0/1
column) and two targets (a quantity and a binary class), written in files of 1M rows,
row groups of 128k rows. Each case runs in a fresh subprocess and reports the peak
resident memory of the whole process (``VmHWM``: torch and pandas included) and the
extra over the process after its imports. The streamed fit's time splits into the one
pass for the encoders and the training epochs (read, encode, shuffle and train); the
in-memory fit's time includes reading the Parquet files into pandas. Both fits use the
same network (the library's defaults: 8 experts of 64 units, piecewise-linear numeric
embedding), batches of 4,096 rows, one epoch, early stopping off; the two cases run
side by side, alternately, in one run. Linux only.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (  # noqa: E402
    command_line, log, markdown_table, parser, provenance, run_case, write_report,
)

FILE_ROWS = 1_000_000
ROW_GROUP_ROWS = 131_072

WRITE = r"""
import json, sys, os
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
rows, folder = int(sys.argv[1]), sys.argv[2]
file_rows, group_rows = int(sys.argv[3]), int(sys.argv[4])
os.makedirs(folder, exist_ok=True)
for index, start in enumerate(range(0, rows, file_rows)):
    n = min(file_rows, rows - start)
    rng = np.random.default_rng(index)
    numeric = rng.normal(size=(n, 16)).astype(np.float32)
    numeric[rng.random(n) < 0.05, 3] = np.nan
    numeric[rng.random(n) < 0.2, 7] = np.nan
    colour = rng.integers(0, 10, n)
    city = rng.integers(0, 100, n)
    user = rng.integers(0, 10_000, n)
    signal = numeric[:, 0] + np.nan_to_num(numeric[:, 3]) * numeric[:, 1] + 0.1 * (colour - 4.5)
    columns = {f"x{j}": numeric[:, j] for j in range(16)}
    columns["colour"] = np.array([f"c{v}" for v in range(10)])[colour]
    columns["city"] = np.array([f"city{v}" for v in range(100)])[city]
    columns["user_id"] = user
    columns["flag"] = rng.random(n) < 0.3
    columns["amount"] = signal + rng.normal(scale=0.5, size=n)
    columns["clicked"] = (signal + rng.normal(size=n)) > 0
    pq.write_table(pa.table(columns), os.path.join(folder, f"part{index:03d}.parquet"),
                   row_group_size=group_rows)
print(json.dumps({"files": index + 1}))
"""

FIT = r"""
import json, sys, time, warnings
import torch
torch.set_num_threads(1)
import numpy as np, pandas as pd
from sk_mmoe import MMoERegressorClassifier, ParquetSource
warnings.simplefilter("ignore")
folder, mode, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
targets = ["amount", "clicked"]
model = MMoERegressorClassifier(batch_size=batch_size, max_epochs=1, early_stopping=False,
                                random_state=0, callbacks__gate_utilization__warn=False)
base = reset_peak()
started = time.perf_counter()
if mode == "stream":
    source = ParquetSource(folder, targets=targets, categorical=["user_id"])
    rows = source.num_rows()
    model.fit(source)
else:
    frame = pd.read_parquet(folder)
    rows = len(frame)
    X = frame.drop(columns=targets)
    X["user_id"] = X["user_id"].astype("category")
    y = frame[targets]
    del frame
    model.fit(X, y)
elapsed = time.perf_counter() - started
train_s = float(sum(model.history[:, "dur"]))
print(json.dumps({"mode": mode, "rows": rows, "fit_s": elapsed, "train_s": train_s,
                  "prepare_s": elapsed - train_s, "rows_per_s": rows / train_s,
                  "peak_mib": peak_bytes() / 2**20, "extra_mib": (peak_bytes() - base) / 2**20,
                  "train_loss": float(model.history[-1, "train_loss"])}))
"""


def main(argv=None):
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--rows", type=int, default=1_000_000)
    arguments.add_argument("--batch-size", type=int, default=4096)
    arguments.add_argument("--stream-only", action="store_true",
                           help="skip the in-memory fit (for data that would not fit)")
    arguments.add_argument("--data", type=Path, default=None,
                           help="folder for the Parquet files (default: a temporary folder)")
    args = arguments.parse_args(argv)
    rows = 20_000 if args.smoke else args.rows
    import tempfile

    start = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.data or Path(scratch) / "data"
        log(f"writing {rows:,} rows to {folder}")
        run_case(WRITE, rows, folder, min(FILE_ROWS, rows), min(ROW_GROUP_ROWS, rows))
        written = time.time() - start
        modes = ["stream"] if args.stream_only else ["stream", "memory"]
        results = []
        for mode in modes:
            log(f"fit: {mode}")
            results.append(run_case(FIT, folder, mode, args.batch_size))
            log(str(results[-1]))
    table = markdown_table(
        ["X", "rows", "peak RSS (MiB)", "extra over imports (MiB)", "encoders / reading (s)",
         "training (s)", "training rows/s", "train loss"],
        [[r["mode"] if r["mode"] == "memory" else "ParquetSource", f"{r['rows']:,}",
          f"{r['peak_mib']:.0f}", f"{r['extra_mib']:.0f}", f"{r['prepare_s']:.1f}",
          f"{r['train_s']:.1f}", f"{r['rows_per_s']:,.0f}", f"{r['train_loss']:.4f}"]
         for r in results],
    )
    title = f"# Streaming from Parquet: {rows:,} rows x 20 feature columns"
    text = (
        "One epoch, batches of {batch:,} rows, the default network; \"encoders / reading\" is "
        "the streamed fit's pass for the encoders, and for the in-memory fit reading the "
        "files into pandas plus its encoding. Peak RSS is the whole process (torch, pandas, "
        "pyarrow included). Writing the files took {written:.0f} s."
    ).format(batch=args.batch_size, written=written)
    if len(results) == 2:
        ratio = results[0]["rows_per_s"] / results[1]["rows_per_s"]
        text += (f" Streamed training ran at {ratio:.2f}x the in-memory rows per second, "
                 f"at {results[0]['peak_mib'] / results[1]['peak_mib']:.2f}x its peak memory.")
    command = command_line("streaming.py", argv)
    write_report(args, "streaming" if args.rows == 1_000_000 or args.smoke else f"streaming_{rows // 1_000_000}m",
                 [title, table, text, provenance(command, time.time() - start)])


if __name__ == "__main__":
    main()
