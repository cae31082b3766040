"""Targets as users store them: what ``tasks="auto"`` makes of counts, ordinal scores and
class codes in integer and float columns, with and without missing values.

Issue 16 asks that, on held-out real tables, the defaults never predict a quantity worse
than its training mean (test R² >= 0), that every ambiguous (whole-number) column warns,
and that small sets of integer class codes, with or without missing labels, stay classes.
``targets.py`` covers integer counts and positive amounts; this script covers the other
storages on real columns:

- AER ``Affairs``: the number of affairs (a count, int), the marriage rating and the
  religiousness (ordinal scores 1-5), both stored as float;
- Ecdat ``Schooling``: years of schooling in 1976 (0-18) stored as float, and a test score
  (``kww``) stored as float with the table's own missing values;
- AER ``NMES1988``: hospital stays (a count) stored as float, and self-rated health as
  integer codes 0/1/2 with 5% of its labels removed at random (stored as float with NaN,
  as pandas stores an integer column with a missing value);
- ``palmerpenguins``: species as integer codes 0/1/2, and body mass.

Rows are split as in the real-data panel (``quality.split``): 50% training, 20% validation
(unused: nothing is chosen here), 30% test. Models: ``auto`` = ``MMoERegressorClassifier()``
at the defaults; ``auto, no shrinkage`` = the same with ``shrink_quantities=False``;
``HGB`` = one ``HistGradientBoostingRegressor`` (or ``Classifier``, for the columns
sk-mmoe reads as classes) per column at its defaults.

    python benchmarks/target_storage.py           # results/target_storage.md
    python benchmarks/target_storage.py --rows valid  # validation rows (results/target_storage_selection.md)
    python benchmarks/target_storage.py --smoke   # seconds: checks the script runs
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

from benchmarks._common import command_line, log, markdown_table, parser, provenance, write_report  # noqa: E402
from benchmarks.quality import _rdataset, split  # noqa: E402
from benchmarks.targets import fit_noting_kind_warnings  # noqa: E402

# Share of the health codes' labels removed (seeded), to give an integer class column the
# missing values a multi-task table often has.
MISSING_SHARE = 0.05


def _drop(frame, targets, leaks=()):
    frame = frame.drop(columns=["rownames", *leaks], errors="ignore")
    return frame.drop(columns=list(targets)), pd.DataFrame(targets, index=frame.index)


def _affairs():
    frame = _rdataset("AER", "Affairs")
    return _drop(frame, {
        "affairs": frame["affairs"],
        "rating": frame["rating"].astype(float),
        "religiousness": frame["religiousness"].astype(float),
    })


def _schooling():
    frame = _rdataset("Ecdat", "Schooling")
    # ed66 (schooling ten years earlier) stays a feature; the wage is a feature too.
    return _drop(frame, {"ed76": frame["ed76"].astype(float), "kww": frame["kww"]})


def _nmes1988():
    frame = _rdataset("AER", "NMES1988")
    codes = frame["health"].map({"poor": 0, "average": 1, "excellent": 2}).astype(float)
    removed = np.random.RandomState(0).rand(len(frame)) < MISSING_SHARE
    return _drop(frame, {"hospital": frame["hospital"].astype(float), "health": codes.mask(removed)},
                 leaks=["visits", "nvisits", "ovisits", "novisits", "emergency"])


def _penguins():
    frame = _rdataset("palmerpenguins", "penguins")
    frame = frame[frame["species"].notna() & frame["body_mass_g"].notna()]
    codes = frame["species"].map({"Adelie": 0, "Chinstrap": 1, "Gentoo": 2}).astype(np.int64)
    return _drop(frame, {"species": codes, "body_mass_g": frame["body_mass_g"]})


TABLES = {"Affairs": _affairs, "Schooling": _schooling, "NMES1988": _nmes1988,
          "penguins": _penguins}
# What each column is, by the table's documentation: the reference the inference is read
# against (never given to the model).
TRUTH = {
    "affairs": "count", "rating": "ordinal score", "religiousness": "ordinal score",
    "ed76": "years (count)", "kww": "test score", "hospital": "count",
    "health": "class codes", "species": "class codes", "body_mass_g": "amount",
}
MODELS = {"auto": {}, "auto, no shrinkage": {"shrink_quantities": False}}


def storage(column):
    """How the column is stored, in the words of the report."""
    dtype = "int" if pd.api.types.is_integer_dtype(column) else "float"
    return dtype + (" with NaN" if column.isna().any() else "")


def _whole_numbers(column):
    values = column.dropna().to_numpy(dtype=float)
    return bool(np.array_equal(values, np.round(values)) and len(np.unique(values)) >= 3)


def fit_defaults(params, X_train, y_train, X_test, y_test, seed):
    """Per-column result rows of one fit at the defaults (plus ``params``)."""
    from sklearn.metrics import accuracy_score, r2_score

    from sk_mmoe import MMoERegressorClassifier

    model = MMoERegressorClassifier(random_state=seed, **params)
    seconds, messages = fit_noting_kind_warnings(model, X_train, y_train)
    predicted = model.predict(X_test)
    rows = []
    for t, name in enumerate(model.task_names_):
        labelled = y_test[name].notna().to_numpy()
        truth, guess = y_test[name].to_numpy()[labelled], predicted[name].to_numpy()[labelled]
        row = dict(task=name, kind=model.task_types_[t], shrinkage=model.output_shrinkage_[t],
                   warned=any(m.startswith(f"Target column {name!r}") for m in messages),
                   whole_numbers=_whole_numbers(y_train[name]), storage=storage(y_train[name]),
                   seconds=seconds, epochs=model.n_iter_)
        if model.tasks_[t].is_classifier:
            majority = y_train[name].mode().iloc[0]
            row.update(accuracy=accuracy_score(truth.astype(float), guess.astype(float)),
                       majority=float(np.mean(truth == majority)))
        else:
            mean = float(y_train[name].mean())
            row.update(r2=r2_score(truth, guess),
                       mean_r2=r2_score(truth, np.full(len(truth), mean)))
        rows.append(row)
    return rows


def fit_trees(X_train, y_train, X_test, y_test):
    """Per-column result rows of one HistGradientBoosting model per column at its
    defaults, for the kind sk-mmoe inferred (the reference a user would try first)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import accuracy_score, r2_score

    from benchmarks.quality import _for_trees
    from sk_mmoe import infer_task_kind

    X_train, X_test = _for_trees(X_train), _for_trees(X_test)
    rows = []
    for name in y_train.columns:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            classes = infer_task_kind(y_train[name]) in ("binary", "multiclass")
        fitted, tested = y_train[name].notna().to_numpy(), y_test[name].notna().to_numpy()
        model = (HistGradientBoostingClassifier if classes else HistGradientBoostingRegressor)(random_state=0)
        model.fit(X_train[fitted], y_train[name][fitted])
        guess, truth = model.predict(X_test[tested]), y_test[name].to_numpy()[tested]
        rows.append(dict(task=name, accuracy=accuracy_score(truth, guess)) if classes
                    else dict(task=name, r2=r2_score(truth, guess)))
    return rows


def run(args):
    tables = ["penguins"] if args.smoke else list(TABLES)
    seeds = [0] if args.smoke else list(range(args.seeds))
    extra = {"max_epochs": 3} if args.smoke else {}
    rows = []
    for table in tables:
        X, y = TABLES[table]()
        for seed in seeds:
            train, valid, test = split(len(X), (0.5, 0.2, 0.3), seed)
            if args.rows == "valid":
                test = valid
            for model, params in MODELS.items():
                result = fit_defaults({**params, **extra}, X.iloc[train], y.iloc[train],
                                      X.iloc[test], y.iloc[test], seed)
                log(f"{table} seed {seed} {model}: " + ", ".join(
                    f"{r['task']} {r['kind']} " + (f"R² {r['r2']:.3f} (mean {r['mean_r2']:.3f}, s {r['shrinkage']:.2f})"
                                                   if "r2" in r else f"acc {r['accuracy']:.3f}")
                    for r in result))
                rows += [dict(table=table, seed=seed, model=model, **r) for r in result]
            trees = fit_trees(X.iloc[train], y.iloc[train], X.iloc[test], y.iloc[test])
            rows += [dict(table=table, seed=seed, model="HGB", **r) for r in trees]
    return pd.DataFrame(rows)


def _columns_table(frame):
    rows = []
    for (table, task), group in frame.groupby(["table", "task"], sort=False):
        auto = group[group["model"] == "auto"]
        plain = group[group["model"] == "auto, no shrinkage"]
        trees = group[group["model"] == "HGB"]
        quantity = auto["r2"].notna().all()
        if quantity:
            score = (f"R² {auto['r2'].mean():.3f} (lowest {auto['r2'].min():.3f})",
                     f"{plain['r2'].mean():.3f} (lowest {plain['r2'].min():.3f})",
                     f"{trees['r2'].mean():.3f} (lowest {trees['r2'].min():.3f})",
                     f"{auto['mean_r2'].mean():.3f}", f"{auto['shrinkage'].mean():.2f}")
        else:
            score = (f"accuracy {auto['accuracy'].mean():.3f}", f"{plain['accuracy'].mean():.3f}",
                     f"{trees['accuracy'].mean():.3f}", f"majority {auto['majority'].mean():.3f}", "-")
        rows.append([table, task, TRUTH[task], auto["storage"].iloc[0],
                     "yes" if auto["whole_numbers"].all() else "no",
                     ", ".join(sorted(set(auto["kind"]))),
                     f"{int(auto['warned'].sum())} of {len(auto)}", *score])
    return markdown_table(
        ["table", "column", "what it is", "stored as", "whole numbers", "auto inferred", "warned",
         "auto test score", "no shrinkage", "HGB", "training mean / majority", "shrinkage factor"], rows)


def summary(frame):
    auto = frame[frame["model"] == "auto"]
    quantities = auto[auto["r2"].notna()]
    negative = quantities[quantities["r2"] < 0]
    whole = auto[auto["whole_numbers"].astype(bool)]
    silent = whole[~whole["warned"].astype(bool)]
    worse = quantities[quantities["r2"] < quantities["mean_r2"]]
    plain = frame[(frame["model"] == "auto, no shrinkage") & frame["r2"].notna()]
    lines = [
        "- **R² >= 0 at the defaults**: "
        + (f"held on all {len(quantities)} (quantity, seed) pairs (lowest {quantities['r2'].min():.3f})."
           if negative.empty else "did **not** hold on " + ", ".join(
               f"{r.task} ({r.table}) seed {r.seed}: {r.r2:.3f}" for r in negative.itertuples()) + "."),
        "- **Worse than the training mean**: "
        + ("never." if worse.empty else ", ".join(
            f"{r.task} ({r.table}) seed {r.seed}: {r.r2:.3f} vs {r.mean_r2:.3f}" for r in worse.itertuples()) + "."),
        f"- **Without the shrinkage** (`shrink_quantities=False`): R² below 0 on "
        f"{int((plain['r2'] < 0).sum())} of {len(plain)} pairs.",
        "- **Warnings**: " + (f"every whole-number column warned on every fit ({len(whole)} (column, seed) pairs)."
                              if silent.empty else "these did **not** warn: " + ", ".join(
                                  f"{r.task} ({r.table}) seed {r.seed}" for r in silent.itertuples()) + "."),
    ]
    codes = auto[auto["task"].map(TRUTH) == "class codes"]
    lines.append("- **Class codes**: " + ", ".join(
        f"{task} ({', '.join(sorted(set(group['kind'])))})" for task, group in codes.groupby("task")) + ".")
    return "\n".join(lines)


def report(frame, command, elapsed, rows="test"):
    return [
        "# Targets as users store them: what `tasks=\"auto\"` makes of them",
        "## Summary\n\n" + summary(frame),
        f"{'Test rows (30%' if rows == 'test' else '**Validation** rows (20%'} of each table), {frame['seed'].nunique()} seeds; every fit on the 50% "
        "training rows at the defaults (early stopping holds out 10% of them, and the "
        "shrinkage factor is chosen on that hold-out). \"Training mean / majority\" scores "
        "the training rows' mean (R²) or most frequent class (accuracy) on the same rows; "
        "the shrinkage factor is the mean of `output_shrinkage_` (1 = outputs as trained, "
        "0 = the training mean). "
        + ("Nothing was chosen on these rows." if rows == "test" else
           "These rows are for choosing settings; the test rows are in `target_storage.md`."),
        "### Per column\n\n" + _columns_table(frame),
        provenance(command, elapsed) + "- threads: one torch thread (`torch.set_num_threads(1)`)\n",
    ]


def main(argv=None):
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--seeds", type=int, default=3)
    cli.add_argument("--rows", choices=["test", "valid"], default="test",
                     help="score on the test rows, or on the validation rows (to choose)")
    args = cli.parse_args(argv)
    torch.set_num_threads(1)
    start = time.time()
    with threadpool_limits(1):
        frame = run(args)
    elapsed = time.time() - start
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "target_storage" if args.rows == "test" else "target_storage_selection"
    frame.to_csv(args.out / (f"{stem}_smoke.csv" if args.smoke else f"{stem}.csv"), index=False)
    write_report(args, stem, report(frame, command_line("target_storage.py", argv), elapsed, args.rows))


if __name__ == "__main__":
    main()
