"""Demo: Shared-Bottom, OMoE and MMoE on the paper's synthetic two-task regression.

Run ``python -m sk_mmoe`` (or ``make demo``); ``python -m sk_mmoe --help`` lists the
options. It finishes within a minute on two CPU cores with the defaults.
"""

import argparse
import time

import numpy as np
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

from sk_mmoe import MMoERegressorClassifier
from sk_mmoe.datasets import make_multitask_regression

# The paper's synthetic setting (Section 4): 8 experts of 16 units, towers of 8; a
# shared bottom of 113 units has about as many parameters as the 8 experts.
ARCHITECTURES = {
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
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    parser.add_argument("--alpha-std", type=float, default=1.0,
                        help="spread of the sine frequencies; 1 gives smooth tasks that the demo's "
                             "models learn in seconds, 8 matches the paper's Figure 2 label "
                             "correlations but needs far more data (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser.parse_args(argv)


def run(correlation=0.5, n_samples=10000, epochs=20, seed=0, alpha_std=1.0):
    """Train the three architectures and return one row of results per architecture."""
    X, y = make_multitask_regression(
        n_samples=n_samples,
        correlation=correlation,
        alpha_std=alpha_std,
        as_frame=True,
        random_state=seed,
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed)
    rows = []
    for name, params in ARCHITECTURES.items():
        model = MMoERegressorClassifier(
            **params, tower_layer_sizes=(8,), gate_dropout=0.0, max_epochs=epochs,
            batch_size=128, lr=1e-3, random_state=seed,
        )
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        pred = model.predict(X_test)
        n_params = sum(p.numel() for p in model.module_.parameters())
        row = {"model": name, "params": n_params, "fit_s": seconds}
        for task in y.columns:
            row[f"mse_{task}"] = mean_squared_error(y_test[task], pred[task])
            row[f"r2_{task}"] = r2_score(y_test[task], pred[task])
        rows.append(row)
    return rows


def format_table(rows):
    columns = list(rows[0])
    cells = [[f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    print(
        f"Two synthetic regression tasks (MMoE paper, Section 3.2), task correlation "
        f"p={args.correlation}, sine frequency spread {args.alpha_std}, {args.n_samples} rows "
        f"(25% test), {args.epochs} epochs.\n"
        "Test-set mean squared error and R^2 per task (lower MSE is better):\n"
    )
    rows = run(args.correlation, args.n_samples, args.epochs, args.seed, args.alpha_std)
    print(format_table(rows))
    best = min(rows, key=lambda r: np.mean([v for k, v in r.items() if k.startswith("mse_")]))
    print(f"\nLowest mean test MSE: {best['model']}.")
    print(
        "One seed, short training, one learning rate: benchmarks/results/synthetic_figure4*.md "
        "compare the three over 20 seeds with the learning rate chosen on validation."
    )


if __name__ == "__main__":
    main()
