"""Census-income table of the MMoE paper: test AUC per task for groups 1 and 2.

Ma et al. (KDD 2018), Section 6.2 and Tables 3-4: two task groups of the UCI
Census-Income (KDD) data. Group 1: income > 50K and never married; group 2:
college degree and never married. Models: Single-Task (one network per task),
Shared-Bottom, OMoE, MMoE with gate dropout 0 (the paper's) and 0.1, and a
``HistGradientBoostingClassifier`` per task.

Only the 99,762-row test file is available on our machines, so for every seed
its rows are split 50/25/25 into train / validation / test (a different split
per seed). The networks run behind a ColumnTransformer (one-hot categories,
standardised numbers) in a Pipeline; the number of epochs is chosen by early
stopping on the validation rows (mean validation AUC over the model's tasks,
best epoch restored), HistGradientBoosting's number of trees likewise. Nothing
is chosen on test rows.

Run from the repository root::

    python benchmarks/census_table.py

It writes ``census_table.md`` and ``census_table.csv`` under ``--out``
(default ``benchmarks/results``). The data folder is ``--data-home``
(default ``../shared/data`` relative to the repository).
"""

import copy
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from _common import command_line, log, markdown_table, parser, provenance
from sk_mmoe import MMoERegressorClassifier, task_scores
from sk_mmoe.datasets import load_census_income

DATA_HOME = Path(__file__).resolve().parents[2] / "shared" / "data"
GROUPS = (1, 2)
# Shared by every network; fixed in advance, not tuned (see the result file).
TRAINING = dict(tower_layer_sizes=(16,), batch_size=512, lr=1e-3)
# The experts' total width (8 x 32) equals the shared bottom's 256 units.
NETWORKS = {
    "Single-Task": dict(architecture="shared_bottom", expert_layer_sizes=(256,)),
    "Shared-Bottom": dict(architecture="shared_bottom", expert_layer_sizes=(256,)),
    "OMoE": dict(architecture="omoe", n_experts=8, expert_layer_sizes=(32,), gate_dropout=0.0),
    "MMoE": dict(architecture="mmoe", n_experts=8, expert_layer_sizes=(32,), gate_dropout=0.0),
    "MMoE, gate dropout 0.1": dict(architecture="mmoe", n_experts=8, expert_layer_sizes=(32,),
                                   gate_dropout=0.1),
}
# The rest of the family and learned task weights, run with --family: CGC and PLE with 4
# shared and 2 task-specific experts per task, so 8 experts of 32 per level as above.
FAMILY = {
    "CGC": dict(architecture="cgc", n_experts=4, n_task_experts=2, expert_layer_sizes=(32,),
                gate_dropout=0.0),
    "PLE (2 levels)": dict(architecture="ple", n_levels=2, n_experts=4, n_task_experts=2,
                           expert_layer_sizes=(32,), gate_dropout=0.0),
    "MMoE, uncertainty task weights": dict(architecture="mmoe", n_experts=8,
                                           expert_layer_sizes=(32,), gate_dropout=0.0,
                                           task_weights="uncertainty"),
}
HGB = "HistGradientBoosting (per task)"
MODELS = [*NETWORKS, HGB]
ALL_MODELS = [*NETWORKS, *FAMILY, HGB]
# Models with one fit per task; the others fit both tasks at once (one row per task).
PER_TASK = {"Single-Task", HGB}
# Best MMoE run of the paper (trained on the 199,523-row file), Tables 3-4.
PAPER_MMOE = {1: {"income_50k": 0.9410, "never_married": 0.9926},
              2: {"college_degree": 0.8860, "never_married": 0.9932}}
TARGETS = {"income_50k": 0.945, "never_married": 0.994}

FULL = dict(n_rows=None, seeds=range(5), max_epochs=15, patience=3, hgb_max_iter=500)
SMOKE = dict(n_rows=1000, seeds=range(1), max_epochs=1, patience=1, hgb_max_iter=5)


def preprocessor():
    return ColumnTransformer([
        ("num", StandardScaler(), make_column_selector(dtype_include="number")),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         make_column_selector(dtype_include="category")),
    ])


def mean_auc(model, X, y):
    return float(np.mean(list(task_scores(model, X, y, metric="roc_auc").values())))


def train_network(params, seed, size, train, valid):
    """Train epoch by epoch; keep the weights of the epoch with the best validation AUC.

    ``train`` and ``valid`` are ``(X, y)`` with ``X`` already preprocessed. Returns the
    model, the best epoch (1-based) and the number of epochs run.
    """
    model = MMoERegressorClassifier(**params, **TRAINING, max_epochs=1, random_state=seed)
    best_auc, best_epoch, best_state = -np.inf, 0, None
    for epoch in range(1, size["max_epochs"] + 1):
        model.partial_fit(*train)
        auc = mean_auc(model, *valid)
        if best_state is None or auc > best_auc:
            best_auc, best_epoch = auc, epoch
            best_state = copy.deepcopy(model.module_.state_dict())
        elif epoch - best_epoch >= size["patience"]:
            break
    model.module_.load_state_dict(best_state)
    return model, best_epoch, epoch


def run_seed(data, group, seed, size, networks=NETWORKS, hgb=True):
    """The models on one 50/25/25 split; one row per (model, task)."""
    X, y = data
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, train_size=0.5, random_state=seed)
    X_valid, X_test, y_valid, y_test = train_test_split(X_rest, y_rest, test_size=0.5,
                                                        random_state=seed)
    prep = preprocessor().fit(X_train)
    train, valid = (prep.transform(X_train), y_train), (prep.transform(X_valid), y_valid)
    rows = []

    def record(model_name, task, valid_auc, test_auc, fit_s, **extra):
        rows.append({"group": group, "seed": seed, "model": model_name, "task": task,
                     "valid_auc": valid_auc, "test_auc": test_auc, "fit_s": fit_s, **extra})

    for name, params in networks.items():
        task_sets = [[task] for task in y.columns] if name == "Single-Task" else [list(y.columns)]
        for tasks in task_sets:
            start = time.perf_counter()
            model, best_epoch, n_epochs = train_network(
                params, seed, size, (train[0], train[1][tasks]), (valid[0], valid[1][tasks]))
            fit_s = time.perf_counter() - start
            # Test AUC through the whole pipeline, on the raw test rows.
            pipeline = Pipeline([("prep", prep), ("model", model)])
            test = task_scores(pipeline, X_test, y_test[tasks], metric="roc_auc")
            valid_scores = task_scores(model, valid[0], valid[1][tasks], metric="roc_auc")
            for task in tasks:
                record(name, task, valid_scores[task], test[task], fit_s,
                       best_epoch=best_epoch, epochs_run=n_epochs)
    for task in y.columns if hgb else []:
        start = time.perf_counter()
        hgb = HistGradientBoostingClassifier(
            categorical_features="from_dtype", max_iter=size["hgb_max_iter"],
            early_stopping=True, scoring="loss", n_iter_no_change=10, random_state=seed,
        ).fit(X_train, y_train[task], X_val=X_valid, y_val=y_valid[task])
        fit_s = time.perf_counter() - start
        record(HGB, task, roc_auc_score(y_valid[task], hgb.predict_proba(X_valid)[:, 1]),
               roc_auc_score(y_test[task], hgb.predict_proba(X_test)[:, 1]), fit_s,
               best_epoch=hgb.n_iter_, epochs_run=hgb.n_iter_)
    return rows


def load(data_home, group, n_rows):
    with warnings.catch_warnings():
        # Only the test file is here; the result file says so.
        warnings.filterwarnings("ignore", message=".*only.*", category=UserWarning)
        census = load_census_income(data_home=data_home, group=group, download_if_missing=False)
    X, y = census.data, census.target
    if n_rows is not None:
        keep = np.random.default_rng(0).choice(len(X), size=n_rows, replace=False)
        X, y = X.iloc[keep], y.iloc[keep]
    return X, y


def group_table(results, group):
    cells = results[results["group"] == group]
    tasks = list(dict.fromkeys(cells["task"]))
    rows = []
    for name in _present(results):
        model_cells = cells[cells["model"] == name]
        row = [name]
        for task in tasks:
            auc = model_cells[model_cells["task"] == task]["test_auc"]
            row.append(f"{auc.mean():.4f} ± {auc.std():.4f}")
        for task in tasks:
            auc = model_cells[model_cells["task"] == task]["valid_auc"]
            row.append(f"{auc.mean():.4f}")
        epochs = model_cells.groupby("seed")["best_epoch"].mean()
        per_seed = model_cells.groupby("seed")["fit_s"]
        fit_s = per_seed.sum() if name in PER_TASK else per_seed.max()
        row += [f"{epochs.mean():.1f}", f"{fit_s.mean():.0f}"]
        rows.append(row)
    rows.append(["Paper, MMoE best run", *(f"{PAPER_MMOE[group][t]:.4f}" for t in tasks),
                 *([""] * len(tasks)), "", ""])
    header = ["model", *(f"test AUC {t}" for t in tasks), *(f"valid AUC {t}" for t in tasks),
              "best epoch / trees", "fit s per seed"]
    return markdown_table(header, rows)


def mmoe_gaps(results):
    """MMoE (gate dropout 0) minus each other model, paired by seed: a markdown table."""
    auc = results.pivot_table(index=["group", "seed", "task"], columns="model", values="test_auc")
    rows = []
    for (group, task), cell in auc.groupby(level=["group", "task"], sort=False):
        row = [str(group), task]
        for other in _present(results):
            if other == "MMoE":
                continue
            gap = cell["MMoE"] - cell[other]
            row.append(f"{gap.mean():+.4f} ± {gap.std():.4f} ({(gap > 0).sum()}/{len(gap)})")
        rows.append(row)
    return markdown_table(
        ["group", "task", *(f"MMoE − {m}" for m in _present(results) if m != "MMoE")], rows)


def _present(results):
    """The models this run fitted, in ALL_MODELS' order."""
    fitted = set(results["model"])
    return [name for name in ALL_MODELS if name in fitted]


def verdict(results):
    cells = results[results["group"] == 1].groupby(["model", "task"])["test_auc"].mean()
    lines = []
    for name in ("MMoE", "MMoE, gate dropout 0.1"):
        if name not in set(results["model"]):
            continue
        parts, met = [], True
        for task, target in TARGETS.items():
            value = cells.loc[(name, task)]
            met &= value >= target
            parts.append(f"{task} {value:.6f} (target ≥ {target})")
        lines.append(f"{name}: {', '.join(parts)}: **{'met' if met else 'not met'}**")
    return lines


def report(results, size, n_rows, command, elapsed, smoke):
    means = results.groupby(["group", "model", "task"])["test_auc"].mean()
    best_nn = {group: means.loc[group].drop(HGB, level="model").groupby("task").idxmax()
               for group in GROUPS}
    best_lines = "; ".join(
        f"group {g}: " + ", ".join(f"{task} {best_nn[g][task][0]} ({means.loc[(g, *best_nn[g][task])]:.4f})"
                                   for task in best_nn[g].index)
        for g in GROUPS)
    hgb = "; ".join(
        f"group {g}: " + ", ".join(f"{task} {means.loc[(g, HGB, task)]:.4f}"
                                   for task in means.loc[(g, HGB)].index)
        for g in GROUPS)
    verdict_lines = "\n".join(f"- {line}" for line in verdict(results))
    networks = results[results["model"] != HGB]
    spread = networks.groupby(["group", "task", "model"])["test_auc"].mean().groupby(
        ["group", "task"], sort=False).agg(lambda m: m.max() - m.min())
    spread_text = ", ".join(f"{task} (group {g}) {value:.4f}" for (g, task), value in spread.items())
    # One row per fit: a multi-task network's rows share its fit.
    fits = pd.concat([networks[networks["model"].isin(PER_TASK)],
                      networks[~networks["model"].isin(PER_TASK)].drop_duplicates(
                          ["group", "seed", "model"])])
    n_fits, n_capped = len(fits), int((fits["best_epoch"] == size["max_epochs"]).sum())
    banner = "\n**SMOKE RUN: tiny sizes, the numbers mean nothing.**\n" if smoke else ""
    n_seeds = len(size["seeds"])
    tables = "\n\n".join(f"## Group {g}\n\n{group_table(results, g)}" for g in GROUPS)
    return f"""# MMoE paper, census-income: test AUC per task (groups 1 and 2)
{banner}
## Paper vs ours

Targets of issue 3, group 1, MMoE test AUC (mean over {n_seeds} seeds):

{verdict_lines}

Best network per task by mean test AUC: {best_lines}. HistGradientBoosting per task:
{hgb}. The paper's best MMoE runs (trained on the 199,523-row training file, validated
and tested on halves of the test file) reach income .9410 / never married .9926 (group 1)
and college .8860 / never married .9932 (group 2). Our numbers come from {n_rows:,} rows of
the test file alone, split 50/25/25 per seed, so each model trains on about a quarter of
the paper's rows and is tested on a different set: compare the ranking of the models
and the gaps, not the third decimal. The paper's qualitative claim is that MMoE beats
Single-Task, Shared-Bottom and OMoE in both groups; the tables below show where that
holds here and by how much. In short: here the five networks are within
{spread_text} of each other in mean test AUC (max − min over the networks), gaps of the
size of the seed-to-seed spread, so no network is clearly best and the paper's MMoE
advantage is not reproduced; HistGradientBoosting per task beats every network on every
task, by the largest margin on income and college degree. Our networks' mean AUCs are
at or above the paper's best MMoE runs, but on a different training set and test split, so that
says nothing about the models. MMoE's test AUC minus each other model's, paired by seed
(mean ± std over seeds; in brackets, the seeds where MMoE is higher):

{mmoe_gaps(results)}

## Setup

- Data: `load_census_income(group=g, download_if_missing=False)` on
  `census-income.test.gz` alone ({n_rows:,} rows; the 199,523-row training file is not on
  our machines). Per seed s in {size['seeds'].start}..{size['seeds'].stop - 1}: `train_test_split` with
  `random_state=s` into 50% train, 25% validation, 25% test (not stratified). Instance
  weights are not used (neither as features nor as sample weights); AUCs are unweighted.
- Preprocessing, fitted on the train rows: `ColumnTransformer` with `StandardScaler` for
  the int64 columns and `OneHotEncoder(handle_unknown="ignore")` for the category
  columns (integer codes such as industry and occupation recodes included); test AUCs
  are computed through `Pipeline([prep, model])` on the raw test rows.
- Networks (`MMoERegressorClassifier`, Adam, lr 1e-3, batch 512, towers of 16 units,
  ReLU): OMoE and MMoE with 8 experts of 32 units and linear gates; Shared-Bottom with a
  256-unit bottom (the experts' total width); Single-Task = one `shared_bottom` network
  of the same shape per task, trained on a one-column `y`. Gate dropout 0 for OMoE and
  for "MMoE" (the paper's model, which predates gate dropout); "MMoE, gate dropout 0.1"
  is sk_mmoe's default.
- Epochs: trained one epoch at a time (`partial_fit`, `max_epochs=1`) up to
  {size['max_epochs']} epochs; after each, the mean validation AUC over the model's tasks; stop
  after {size['patience']} epochs without improvement and restore the best epoch's weights
  ("best epoch" in the tables). The networks' other hyper-parameters were fixed in
  advance, not searched (see below).
- HistGradientBoosting: `HistGradientBoostingClassifier(categorical_features="from_dtype")`,
  one per task, defaults otherwise (learning rate 0.1, 31 leaves), up to {size['hgb_max_iter']} trees
  with early stopping on the validation rows (`X_val`, `y_val`, 10 rounds on the log
  loss).

## Reductions versus the issue and the paper

- Only the number of epochs (networks) and of trees (HistGradientBoosting) was chosen
  on validation. Learning rate, batch size, expert count and widths were fixed in
  advance, not searched: a grid over them did not fit the hour of CPU time available
  for this run (2-core machine shared with another job, one thread). The paper tuned
  its hyper-parameters; a search could move every network's AUC, so small gaps
  between the networks should not be read as settled.
- At most {size['max_epochs']} epochs per network; {n_capped} of {n_fits} network fits had their best
  validation AUC at the last allowed epoch, so they might have improved with more.
- {n_seeds} seeds (the minimum the issue asks for).
- Test-file rows only, as explained above.

{tables}

Mean ± std over the {n_seeds} seeds of the test AUC; validation AUC is the mean over seeds at
the chosen epoch (it selected the epoch, so it is optimistic). "best epoch / trees":
mean chosen epoch (networks) or number of trees (HistGradientBoosting). "fit s per
seed": training plus per-epoch validation, summed over a model's fits for one seed.
`census_table.csv` has one row per (group, seed, model, task).

## Provenance

{provenance(command, elapsed)}"""


def main(argv=None):
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--data-home", type=Path, default=DATA_HOME,
                      help=f"folder with census-income.test.gz (default {DATA_HOME})")
    args.add_argument("--family", action="store_true",
                      help="also fit CGC, PLE and MMoE with uncertainty task weights")
    args.add_argument("--only-family", action="store_true",
                      help="fit MMoE, CGC, PLE and MMoE with uncertainty task weights only")
    args.add_argument("--seeds", type=int, default=None, help="number of seeds (default 5)")
    args.add_argument("--rows", type=int, default=None,
                      help="rows drawn from the test file (default: all)")
    args = args.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*polariz.*")
    size = dict(SMOKE if args.smoke else FULL)
    if args.seeds is not None:
        size["seeds"] = range(args.seeds)
    if args.rows is not None:
        size["n_rows"] = args.rows
    networks = {**NETWORKS, **FAMILY} if args.family else NETWORKS
    if args.only_family:
        networks = {"MMoE": NETWORKS["MMoE"], **FAMILY}
    start = time.perf_counter()

    rows = []
    with threadpool_limits(1):
        for group in GROUPS:
            data = load(args.data_home, group, size["n_rows"])
            n_rows = len(data[0])
            for seed in size["seeds"]:
                rows += run_seed(data, group, seed, size, networks, hgb=not args.only_family)
                done = pd.DataFrame(rows)
                done = done[(done["group"] == group) & (done["seed"] == seed)]
                log(f"group {group} seed {seed}: " + "; ".join(
                    f"{r.model}/{r.task} {r.test_auc:.4f}" for r in done.itertuples()))
    results = pd.DataFrame(rows)
    elapsed = time.perf_counter() - start
    write_results(results, size, n_rows, command_line("census_table.py", argv), elapsed,
                  args.smoke, args.out)
    return results


def family_report(results, size, n_rows, command, elapsed, smoke):
    """The report of an ``--only-family`` run: MMoE against CGC, PLE and learned weights."""
    banner = "\n**SMOKE RUN: tiny sizes, the numbers mean nothing.**\n" if smoke else ""
    tables = "\n\n".join(f"## Group {g}\n\n{group_table(results, g)}" for g in GROUPS)
    return f"""# Census-income: MMoE, CGC, PLE and uncertainty task weights (test AUC per task)
{banner}
A reduced run of `census_table.py` (`--only-family`): {len(size["seeds"])} seeds,
{n_rows:,} rows drawn once from the 99,762-row test file, each seed split 50/25/25 into
train / validation / test, the epoch chosen on validation AUC (at most
{size["max_epochs"]} epochs, patience {size["patience"]}), as in
[census_table.md](../census_table.md). CGC and PLE have 4 shared experts and 2 per task
(8 experts of 32 units per level, as MMoE's 8); gate dropout 0 for all. The full table's
other models are not refitted here, and its rows and seeds are not these, so compare rows
within this file.

{tables}

## Paired by seed

MMoE minus each model, mean ± std over seeds of the test-AUC difference (seeds MMoE won):

{mmoe_gaps(results)}

## Provenance

{provenance(command, elapsed)}"""


def write_results(results, size, n_rows, command, elapsed, smoke, out):
    """The csv (one row per group, seed, model and task) and the markdown report."""
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "census_table.csv", index=False)
    write = report if HGB in set(results["model"]) else family_report
    (out / "census_table.md").write_text(write(results, size, n_rows, command, elapsed, smoke))
    log(f"wrote {out / 'census_table.md'} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
