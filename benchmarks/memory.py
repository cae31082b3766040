"""Memory of the X entry path: how many copies of X does encoding a DataFrame or an array take?

    python benchmarks/memory.py            # 1,000,000 x 100 float32 (results/memory.md)
    python benchmarks/memory.py --smoke    # 10,000 x 10: checks the script runs

Each case runs in a fresh subprocess: build X, reset the peak resident set size
(``/proc/self/clear_refs``), encode X as ``fit`` and ``predict`` do
(``FeatureEncoder.fit_transform`` / ``transform``), and read the peak (``VmHWM``). The
extra memory is reported in copies of X. Linux only.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (  # noqa: E402
    command_line, markdown_table, parser, provenance, run_case, write_report,
)

CASE = r"""
import json, sys
import numpy as np, pandas as pd
from sk_mmoe import MMoERegressorClassifier
from sk_mmoe._features import FeatureEncoder

rows, cols, kind = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
X = np.random.RandomState(0).normal(size=(rows, cols)).astype(np.float32)
if kind.startswith("frame"):
    X = pd.DataFrame(X, columns=[f"f{j}" for j in range(cols)])
if kind == "frame_with_category":
    X["city"] = pd.Categorical(np.random.RandomState(1).choice(["a", "b", "c"], rows))

base = reset_peak()
model, encoder = MMoERegressorClassifier(), FeatureEncoder()
fitted = encoder.fit_transform(model, X, numeric_embedding="auto")  # as fit does
fit_peak = peak_bytes() - base
del fitted
base = reset_peak()
predicted = encoder.transform(model, X)
predict_peak = peak_bytes() - base
x_bytes = rows * cols * 4
print(json.dumps({"kind": kind, "x_mib": x_bytes / 2**20, "fit_mib": fit_peak / 2**20,
                  "predict_mib": predict_peak / 2**20}))
"""

KINDS = ("ndarray", "frame", "frame_with_category")


def main(argv=None):
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    rows, cols = (10_000, 10) if args.smoke else (1_000_000, 100)
    start = time.time()
    results = []
    for kind in KINDS:
        results.append(run_case(CASE, rows, cols, kind))
    table = markdown_table(
        ["X", "X (MiB)", "extra at fit (MiB)", "copies of X", "extra at predict (MiB)", "copies of X"],
        [[r["kind"], f"{r['x_mib']:.0f}", f"{r['fit_mib']:.0f}", f"{r['fit_mib'] / r['x_mib']:.2f}",
          f"{r['predict_mib']:.0f}", f"{r['predict_mib'] / r['x_mib']:.2f}"] for r in results],
    )
    write_report(args, "memory", [
        "# Memory of the X entry path",
        f"{rows:,} x {cols} float32 features (a DataFrame case adds one category column). "
        "Extra peak resident memory while encoding X as `fit` and `predict` do, in MiB and "
        "in copies of X's float32 size. The issue's starting point: a float32 DataFrame cost "
        "two copies (pandas' read-only view, then a C-order copy), an ndarray none.",
        table,
        provenance(command_line("memory.py", argv), time.time() - start),
    ])


if __name__ == "__main__":
    main()
