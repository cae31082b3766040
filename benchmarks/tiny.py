"""Tiny smooth tables: sk-mmoe at its defaults against LogisticRegression and MLPClassifier.

Issue 19's goal: on small smooth problems (a linear 3-class problem, iris, wine, breast
cancer, 100-150 training rows, several draws) the defaults score within 0.01 accuracy of
the better of LogisticRegression and MLPClassifier. Every draw splits a table into
disjoint training, validation and test rows; ``--select`` scores candidate settings on the
validation rows (that is how the rules in ``resolve_numeric_embedding`` and
``small_table_weight_decay`` were chosen), the default run reports the test rows.

    python benchmarks/tiny.py               # defaults, piecewise-linear and references on test rows (results/tiny.md)
    python benchmarks/tiny.py --select      # candidates on validation rows (results/tiny_selection.md)
    python benchmarks/tiny.py --smoke       # seconds: checks the script runs
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import command_line, log, markdown_table, parser, provenance  # noqa: E402

# Most validation / test rows per draw; what a table has beyond its training rows is
# split half and half up to this.
MAX_HELD_ROWS = 300
GOAL = 0.01


def _linear3(seed):
    """750 rows, 5 standard normal features, 3 classes from noisy linear scores (a linear model scores about 0.82)."""
    rng = np.random.RandomState(1000 + seed)
    X = rng.standard_normal((750, 5))
    weights = 2.0 * rng.standard_normal((5, 3))
    y = np.argmax(X @ weights + rng.gumbel(size=(750, 3)), axis=1)
    return X, y


def _sklearn(name):
    from sklearn import datasets

    def load(seed):
        bunch = getattr(datasets, f"load_{name}")()
        return bunch.data, bunch.target

    return load


# name: (loader(seed) -> X, y; training rows)
PROBLEMS = {
    "linear3": (_linear3, 150),
    "iris": (_sklearn("iris"), 100),
    "wine": (_sklearn("wine"), 100),
    "breast_cancer": (_sklearn("breast_cancer"), 150),
}


def split(n_rows, n_train, seed):
    """Disjoint (train, valid, test) positions: the rest beyond n_train halved, capped."""
    order = np.random.RandomState(seed).permutation(n_rows)
    held = min((n_rows - n_train) // 2, MAX_HELD_ROWS)
    return order[:n_train], order[n_train:n_train + held], order[n_train + held:n_train + 2 * held]


def logistic():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))


def mlp(seed):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), MLPClassifier(max_iter=2000, random_state=seed))


def mmoe(seed, **params):
    from sk_mmoe import MMoERegressorClassifier

    if params.pop(REFIT, False):
        return RefitOnAllRows(MMoERegressorClassifier(random_state=seed, **params))
    return MMoERegressorClassifier(random_state=seed, **params)


# A candidate with this key set first fits as given (early stopping on a hold-out), then
# fits a new network on all training rows for the best epoch's count, without a hold-out.
REFIT = "refit_on_all_rows"


class RefitOnAllRows:
    """Early stopping picks the number of epochs, then every training row trains."""

    def __init__(self, model):
        self.model = model

    def fit(self, X, y):
        valid_loss = self.model.fit(X, y).history_[:, "valid_loss"]
        best_epochs = int(np.argmin(valid_loss)) + 1
        self.model.set_params(early_stopping=False, max_epochs=best_epochs).fit(X, y)
        return self

    def predict(self, X):
        return self.model.predict(X)


# Candidates compared by --select on validation rows; "defaults" is whatever the
# estimator does today, the others pin the numeric embedding.
CANDIDATES = {
    "defaults": {},
    "piecewise_linear": {"numeric_embedding": "piecewise_linear"},
    "no_embedding": {"numeric_embedding": None},
    # A 10% hold-out of 100-150 rows is 10-15 rows: a noisy signal to stop on; wait longer.
    "no_embedding_patience_30": {"numeric_embedding": None, "n_iter_no_change": 30},
    "no_embedding_adamw_0.1": {"numeric_embedding": None, "optimizer": torch.optim.AdamW,
                               "optimizer__weight_decay": 0.1},
    # Second round (after issue 16's shrinkage): a larger hold-out to stop on, a smaller
    # network, a faster rate.
    "validation_fraction_0.2": {"validation_fraction": 0.2},
    "small_network": {"n_experts": 4, "expert_layer_sizes": (32,), "tower_layer_sizes": (16,)},
    "lr_3e-3": {"lr": 3e-3},
    # Third round: the hold-out's 10-15 rows cost training data, so refit on all rows
    # for the epochs early stopping chose; and weight decay strong enough to matter
    # (AdamW's decay is multiplied by lr: 0.1 above shrank the weights by ~2% over a fit
    # of ~200 steps, 5 shrinks them by ~60%).
    "refit_on_all_rows": {REFIT: True},
    "adamw_1": {"optimizer": torch.optim.AdamW, "optimizer__weight_decay": 1.0},
    "adamw_5": {"optimizer": torch.optim.AdamW, "optimizer__weight_decay": 5.0},
    # Fourth round: decay 5 helped linear3 but under-fit iris, which trains 100-200
    # epochs; a milder decay, and decay with lr 3e-3 (which helped iris in round 2).
    "adamw_2": {"optimizer": torch.optim.AdamW, "optimizer__weight_decay": 2.0},
    "adamw_2_lr_3e-3": {"optimizer": torch.optim.AdamW, "optimizer__weight_decay": 2.0, "lr": 3e-3},
    "adamw_5_lr_3e-3": {"optimizer": torch.optim.AdamW, "optimizer__weight_decay": 5.0, "lr": 3e-3},
}
REFERENCES = {"LogisticRegression": lambda seed: logistic(), "MLPClassifier": mlp}


def run(problems, draws, rows, candidates, extra):
    records = []
    for problem in problems:
        loader, n_train = PROBLEMS[problem]
        for draw in draws:
            X, y = loader(draw)
            # Class names, as a user's labels usually are: whole numbers 0, 1, 2 could be
            # a count, and sk-mmoe's inference rule may read them so.
            y = np.array([f"class {v}" for v in y])
            train, valid, test = split(len(X), n_train, draw)
            held = valid if rows == "valid" else test
            models = {name: (lambda make=make: make(draw)) for name, make in REFERENCES.items()}
            models.update({f"sk-mmoe {c}": (lambda c=c: mmoe(draw, **CANDIDATES[c], **extra))
                           for c in candidates})
            for name, make in models.items():
                model = make()
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.fit(X[train], y[train])
                seconds = time.perf_counter() - start
                accuracy = float(np.mean(np.asarray(model.predict(X[held])).ravel() == y[held]))
                records.append(dict(problem=problem, draw=draw, model=name, accuracy=accuracy,
                                    seconds=seconds, n_train=len(train), n_held=len(held)))
            log(f"{problem} draw {draw}: " + ", ".join(
                f"{r['model']} {r['accuracy']:.3f}" for r in records[-len(models):]))
    return pd.DataFrame(records)


def report(frame, rows, command, elapsed):
    means = frame.groupby(["problem", "model"], sort=False)["accuracy"].mean().unstack()
    models = list(frame["model"].unique())
    ours = [m for m in models if m.startswith("sk-mmoe")]
    best_reference = means[list(REFERENCES)].max(axis=1)
    sizes = frame.groupby("problem", sort=False)[["n_train", "n_held"]].first()
    lines = []
    for problem in means.index:
        gaps = [means.loc[problem, m] - best_reference[problem] for m in ours]
        lines.append([problem, sizes.loc[problem, "n_train"], sizes.loc[problem, "n_held"],
                      *[f"{means.loc[problem, m]:.3f}" for m in models],
                      *[f"{g:+.3f} ({'met' if g >= -GOAL else 'missed'})" for g in gaps]])
    header = ["problem", "training rows", f"{rows} rows", *models,
              *[f"{m} - best reference" for m in ours]]
    seconds = frame.groupby("model", sort=False)["seconds"].mean()
    which = "validation" if rows == "valid" else "test"
    return "\n\n".join([
        f"# Tiny smooth tables: accuracy on {which} rows",
        f"Mean accuracy over {frame['draw'].nunique()} draws (each draw: new training / "
        f"validation / test rows; {'the test rows are not used here' if rows == 'valid' else 'the validation rows are not used here'}). "
        f"Goal (issue 19): sk-mmoe's defaults within {GOAL} of the better of "
        "LogisticRegression and MLPClassifier (both after StandardScaler, at their defaults "
        "otherwise). sk-mmoe at its defaults otherwise (early stopping on 10% of the training rows).",
        markdown_table(header, lines),
        "Mean fit seconds: " + ", ".join(f"{m} {s:.2f}" for m, s in seconds.items()) + ".",
        provenance(command, elapsed),
    ]) + "\n"


def main(argv=None):
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--select", action="store_true", help="candidates on validation rows")
    cli.add_argument("--draws", type=int, default=10)
    cli.add_argument("--problems", nargs="*", choices=list(PROBLEMS))
    cli.add_argument("--candidates", nargs="*", choices=list(CANDIDATES))
    cli.add_argument("--stem", help="result file name stem (default tiny or tiny_selection)")
    args = cli.parse_args(argv)
    torch.set_num_threads(1)
    start = time.time()
    if args.smoke:
        problems, draws, extra = ["iris"], [0], {"max_epochs": 3}
        args.candidates = args.candidates or ["defaults"]
    else:
        problems, draws, extra = args.problems or list(PROBLEMS), list(range(args.draws)), {}
    rows = "valid" if args.select else "test"
    # On test rows, beside the defaults: piecewise-linear everywhere, the rule before.
    candidates = args.candidates or (list(CANDIDATES) if args.select else ["defaults", "piecewise_linear"])
    with threadpool_limits(1):
        frame = run(problems, draws, rows, candidates, extra)
    stem = (args.stem or ("tiny_selection" if args.select else "tiny")) + ("_smoke" if args.smoke else "")
    text = report(frame, rows, command_line("tiny.py", argv), time.time() - start)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / f"{stem}.csv", index=False)
    (args.out / f"{stem}.md").write_text(text)
    print(text)
    return frame


if __name__ == "__main__":
    main()
