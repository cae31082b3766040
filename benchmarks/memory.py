"""Memory of fit and predict: how many copies of X do they take beyond X itself?

    python benchmarks/memory.py            # results/memory.md: encoding 1,000,000 x 100;
                                           # fit + predict 500,000 and 2,000,000 x 50
    python benchmarks/memory.py --smoke    # 10,000 x 10: checks the script runs

Each case runs in a fresh subprocess: build X, reset the peak resident set size
(``/proc/self/clear_refs``), run the step, and read the peak (``VmHWM``). The extra
memory is reported in copies of X. Two kinds of step: encoding X as ``fit`` and
``predict`` do (``FeatureEncoder.fit_transform`` / ``transform``), and the whole ``fit``
(2 epochs, early stopping on its hold-out, defaults otherwise) and ``predict`` of
``MMoERegressorClassifier``, after a warm-up fit and predict on 2,000 rows, so that
libraries loaded and code paged in on first use are not counted as data. Linux only.
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

FIT_CASE = r"""
import json, sys, warnings
import numpy as np, torch
from sk_mmoe import MMoERegressorClassifier

torch.set_num_threads(1)
warnings.simplefilter("ignore")  # ConvergenceWarning of the 2-epoch fits
rows, cols, embedding = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
embedding = None if embedding == "None" else embedding


def data(n):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, cols)).astype(np.float32)
    y = np.c_[X[:, 0] + rng.normal(size=n), X[:, 1] > 0].astype(np.float32)
    return X, y


def model():
    return MMoERegressorClassifier(numeric_embedding=embedding, max_epochs=2, random_state=0,
                                   tasks=["regression", "binary"])


X, y = data(2_000)
model().fit(X, y).predict(X)  # warm-up: first-use costs are not data
X, y = data(rows)
base = reset_peak()
fitted = model().fit(X, y)
fit_peak = peak_bytes() - base
base = reset_peak()
fitted.predict(X)
predict_peak = peak_bytes() - base
print(json.dumps({"rows": rows, "embedding": fitted._feature_encoder.numeric_embedding_,
                  "x_mib": X.nbytes / 2**20, "fit_mib": fit_peak / 2**20,
                  "predict_mib": predict_peak / 2**20}))
"""
# (rows, numeric_embedding) of the fit and predict cases; 50 float32 columns.
FIT_CASES = [(500_000, "auto"), (2_000_000, "auto"), (2_000_000, "None")]
SMOKE_FIT_CASES = [(5_000, "auto")]


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
    fits = [run_case(FIT_CASE, n, 10 if args.smoke else 50, embedding)
            for n, embedding in (SMOKE_FIT_CASES if args.smoke else FIT_CASES)]
    fit_table = markdown_table(
        ["rows", "numeric embedding", "X (MiB)", "extra at fit (MiB)", "copies of X",
         "extra at predict (MiB)", "copies of X"],
        [[f"{r['rows']:,}", str(r["embedding"]), f"{r['x_mib']:.0f}", f"{r['fit_mib']:.0f}",
          f"{r['fit_mib'] / r['x_mib']:.2f}", f"{r['predict_mib']:.0f}",
          f"{r['predict_mib'] / r['x_mib']:.2f}"] for r in fits],
    )
    write_report(args, "memory", [
        "# Memory of fit and predict",
        "## The X entry path\n\n"
        f"{rows:,} x {cols} float32 features (a DataFrame case adds one category column). "
        "Extra peak resident memory while encoding X as `fit` and `predict` do, in MiB and "
        "in copies of X's float32 size. The issue's starting point: a float32 DataFrame cost "
        "two copies (pandas' read-only view, then a C-order copy), an ndarray none.",
        table,
        "## Fit and predict\n\n"
        f"A float32 ndarray of {10 if args.smoke else 50} columns, two tasks (regression, binary); `fit` with the "
        "defaults (`numeric_embedding=\"auto\"` is piecewise-linear here; early stopping "
        "holds out 10%) for 2 epochs, then `predict` on the same X. Extra peak resident "
        "memory of each call over the process holding X, after a warm-up fit and predict "
        "on 2,000 rows (libraries and code loaded on first use are not data).",
        fit_table,
        provenance(command_line("memory.py", argv), time.time() - start),
    ])


if __name__ == "__main__":
    main()
