"""Demo: when tasks are only loosely related, MMoE beats one shared network.

Run ``python -m sk_mmoe`` (or ``make demo``); ``python -m sk_mmoe --help`` lists the
options. On the MMoE paper's synthetic two-task regression (Section 3.2) with task
correlation 0.5, it trains four models at the library's defaults (early stopping on a
held-out share of the training rows): one network per task, a Shared-Bottom network,
OMoE and MMoE, and prints their test errors and the honest winner. About a minute on
two CPU cores.
"""

import argparse
import time

import numpy as np
import torch
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from sk_mmoe import MMoERegressorClassifier
from sk_mmoe.datasets import make_multitask_regression

# The paper's synthetic setting (Section 4): 8 experts of 16 units, towers of 8; a
# shared bottom of 113 units has about as many parameters as the 8 experts. The
# single-task networks get the same bottom each.
MODELS = {
    "single_task": dict(architecture="shared_bottom", expert_layer_sizes=(113,)),
    "shared_bottom": dict(architecture="shared_bottom", expert_layer_sizes=(113,)),
    "omoe": dict(architecture="omoe", n_experts=8, expert_layer_sizes=(16,)),
    "mmoe": dict(architecture="mmoe", n_experts=8, expert_layer_sizes=(16,)),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sk_mmoe", description=__doc__.splitlines()[0])
    parser.add_argument("--correlation", type=float, default=0.5,
                        help="cosine of the two tasks' weight vectors, in [-1, 1] (default 0.5)")
    parser.add_argument("--n-samples", type=int, default=10000,
                        help="rows generated, split 3:1 into train and test (default 10000)")
    parser.add_argument("--max-epochs", type=int, default=200,
                        help="upper bound on training epochs; early stopping usually ends "
                             "training well before it (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; networks this small train fastest on one, and "
                             "many times slower with more on a busy machine (default 1)")
    return parser.parse_args(argv)


def _fit_and_predict(params, X_train, y_train, X_test, max_epochs, seed):
    model = MMoERegressorClassifier(
        **params, tower_layer_sizes=(8,), max_epochs=max_epochs, random_state=seed
    )
    model.fit(X_train, y_train)
    n_params = sum(p.numel() for p in model.module_.parameters())
    return model.predict(X_test), n_params, model.n_iter_


def run(correlation=0.5, n_samples=10000, max_epochs=200, seed=0):
    """Train the four models and return one row of results per model."""
    X, y = make_multitask_regression(
        n_samples=n_samples, correlation=correlation, alpha_std=1.0, as_frame=True,
        random_state=seed,
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed)
    rows = []
    for name, params in MODELS.items():
        start = time.perf_counter()
        if name == "single_task":
            results = [
                _fit_and_predict(params, X_train, y_train[[task]], X_test, max_epochs, seed)
                for task in y.columns
            ]
            pred = {task: r[0][task] for task, r in zip(y.columns, results)}
            n_params, epochs = sum(r[1] for r in results), max(r[2] for r in results)
        else:
            pred, n_params, epochs = _fit_and_predict(params, X_train, y_train, X_test, max_epochs, seed)
        row = {"model": name, "params": n_params, "epochs": epochs, "fit_s": time.perf_counter() - start}
        for task in y.columns:
            row[f"mse_{task}"] = mean_squared_error(y_test[task], pred[task])
        row["mse_mean"] = float(np.mean([row[f"mse_{task}"] for task in y.columns]))
        rows.append(row)
    return rows


def format_table(rows):
    columns = list(rows[0])
    cells = [[f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def verdict(rows):
    """One honest sentence: which model had the lowest mean test error, by how much."""
    ranked = sorted(rows, key=lambda r: r["mse_mean"])
    best, second = ranked[0], ranked[1]
    return (
        f"Lowest mean test MSE: {best['model']} ({best['mse_mean']:.3f}; next "
        f"{second['model']} {second['mse_mean']:.3f}, "
        f"{100 * (second['mse_mean'] / best['mse_mean'] - 1):.0f}% higher)."
    )


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"Two synthetic regression tasks (MMoE paper, Section 3.2) with task correlation "
        f"p={args.correlation}, {args.n_samples} rows (25% test), library defaults "
        f"(early stopping, at most {args.max_epochs} epochs).\n"
        "Test mean squared error per task (lower is better):\n"
    )
    rows = run(args.correlation, args.n_samples, args.max_epochs, args.seed)
    print(format_table(rows))
    print("\n" + verdict(rows))
    print(
        "One seed: benchmarks/results/demo_seeds.md repeats this over 10 seeds, and "
        "benchmarks/results/synthetic_figure4*.md compare the architectures at several "
        "correlations."
    )


if __name__ == "__main__":
    main()
