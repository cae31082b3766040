"""Gate polarization with and without gate dropout, on synthetic and census-income data.

A run is *polarized* when some task's gate puts more than 90% of its mean weight on one
expert (``sk_mmoe.diagnostics.polarized_tasks``); an expert is *dead* when its mean weight
is under 1% for every task (``dead_experts``). Both are measured on the held-out test rows
of each run, after training.

The script has two parts:

1. An exploration at ``gate_dropout=0``, a few seeds per setting, to find settings where
   the gates polarize (many experts, a high learning rate, uncentred or unscaled inputs).
2. The study: ``--n-seeds`` seeds per chosen setting and ``gate_dropout`` in {0, 0.1, 0.2},
   recording the share of polarized runs, dead experts, normalized entropy, the share of
   rows whose largest gate weight exceeds 0.9, the test metrics (R² and MSE per task for
   the synthetic generator, ROC AUC per task for census-income), and whether the
   ``GatePolarizationWarning`` fired.

Each seed draws fresh data (synthetic) or a fresh subsample of rows (census), shared by
the three gate_dropout values, so that the comparison is paired.

Run from the repository root::

    python benchmarks/polarization.py            # full study, ~30 min on one core
    python benchmarks/polarization.py --smoke --out /tmp/polarization   # seconds

It writes ``polarization.md``, ``polarization_*.csv`` and ``polarization_*.png`` into
``--out`` (default ``benchmarks/results``).
"""

import argparse
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import sk_mmoe
from sk_mmoe import MMoERegressorClassifier, NonFiniteLossError, task_scores
from sk_mmoe.datasets import load_census_income, make_multitask_regression
from sk_mmoe.diagnostics import (
    GatePolarizationWarning,
    dead_experts,
    normalized_entropy,
    polarized_row_share,
    polarized_tasks,
)

RESULTS = Path(__file__).parent / "results"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CENSUS_FILE = "census-income.test.gz"
GATE_DROPOUTS = (0.0, 0.1, 0.2)


@dataclass(frozen=True)
class Setting:
    """One training setting: the data, its preprocessing and the model's parameters."""

    name: str
    dataset: str  # "synthetic" or "census"
    description: str
    n_experts: int = 16
    lr: float = 1e-2
    max_epochs: int = 20
    # Synthetic: features become scale * x + offset, x ~ N(0, I).
    scale: float = 1.0
    offset: float = 0.0
    n_features: int = 10
    # Census: whether the numeric columns are standardised (else passed through raw).
    scale_numeric: bool = True
    n_train: int = 4000
    n_test: int = 2000
    expert_layer_sizes: tuple = (16,)
    tower_layer_sizes: tuple = (8,)
    batch_size: int = 256
    model_params: dict = field(default_factory=dict)


SYNTHETIC = dict(dataset="synthetic", n_experts=16, lr=1e-2, max_epochs=20)
CENSUS = dict(dataset="census", n_experts=16, lr=1e-2, max_epochs=10, n_train=9000, n_test=3000)

# Part 1: what was tried at gate_dropout=0.
EXPLORATION = [
    Setting("syn_lr1e-3", description="16 experts, lr 1e-3, standardised x",
            **{**SYNTHETIC, "lr": 1e-3}),
    Setting("syn_lr1e-2", description="16 experts, lr 1e-2, standardised x", **SYNTHETIC),
    Setting("syn_32e_lr1e-1", description="32 experts, lr 1e-1, standardised x",
            **{**SYNTHETIC, "n_experts": 32, "lr": 1e-1, "max_epochs": 40}),
    Setting("syn_scale100", description="16 experts, lr 1e-2, x * 100 (zero mean)",
            scale=100.0, **SYNTHETIC),
    Setting("syn_offset1", description="16 experts, lr 1e-2, x + 1", offset=1.0, **SYNTHETIC),
    Setting("syn_offset3", description="16 experts, lr 1e-2, x + 3", offset=3.0, **SYNTHETIC),
    Setting("syn_offset10", description="16 experts, lr 1e-2, x + 10", offset=10.0, **SYNTHETIC),
    Setting("census_scaled", description="16 experts, lr 1e-2, numeric columns standardised",
            **CENSUS),
    Setting("census_raw", description="16 experts, lr 1e-2, numeric columns raw (no scaler)",
            scale_numeric=False, **CENSUS),
]
EXPLORATION_SEEDS = 3

# Part 2: the settings studied over many seeds and every gate_dropout.
STUDY = ["syn_32e_lr1e-1", "syn_offset3", "syn_offset10", "census_scaled", "census_raw"]
# The setting whose polarized run is drawn, next to the same seed with gate_dropout=0.1.
FIGURE_SETTING = "syn_offset3"


def smoke_setting(setting):
    """The same setting, small enough to run in a fraction of a second."""
    return replace(setting, n_train=300, n_test=200, max_epochs=2, batch_size=128,
                   n_experts=min(setting.n_experts, 4))


# -- data -------------------------------------------------------------------------------

_CENSUS_CACHE = {}


def census_available(data_home=SHARED_DATA):
    return (Path(data_home) / CENSUS_FILE).is_file()


def _census(data_home):
    if data_home not in _CENSUS_CACHE:
        with warnings.catch_warnings():
            # Only the test file is here; the loader says so with a UserWarning.
            warnings.filterwarnings("ignore", message=".*only.*", category=UserWarning)
            _CENSUS_CACHE[data_home] = load_census_income(
                data_home=data_home, download_if_missing=False, group=1
            )
    return _CENSUS_CACHE[data_home]


def make_data(setting, seed, data_home=SHARED_DATA):
    """Train and test rows for one seed: ``X_train, y_train, X_test, y_test``."""
    n = setting.n_train + setting.n_test
    if setting.dataset == "synthetic":
        X, y = make_multitask_regression(
            n, setting.n_features, correlation=0.5, as_frame=True, random_state=seed
        )
        X = X * setting.scale + setting.offset
    else:
        census = _census(str(data_home))
        rows = np.random.default_rng(seed).choice(len(census.data), n, replace=False)
        X, y = census.data.iloc[rows], census.target.iloc[rows]
    return X[: setting.n_train], y[: setting.n_train], X[setting.n_train:], y[setting.n_train:]


def make_model(setting, gate_dropout, seed):
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    model = MMoERegressorClassifier(
        n_experts=setting.n_experts,
        expert_layer_sizes=setting.expert_layer_sizes,
        tower_layer_sizes=setting.tower_layer_sizes,
        gate_dropout=gate_dropout,
        lr=setting.lr,
        max_epochs=setting.max_epochs,
        batch_size=setting.batch_size,
        random_state=seed,
        **setting.model_params,
    )
    if setting.dataset == "synthetic":
        return model
    numeric = StandardScaler() if setting.scale_numeric else "passthrough"
    prep = ColumnTransformer([
        ("num", numeric, make_column_selector(dtype_include="number")),
        ("cat", OneHotEncoder(handle_unknown="ignore"),
         make_column_selector(dtype_include="category")),
    ])
    return Pipeline([("prep", prep), ("mmoe", model)])


def _gate_weights(model, X):
    if hasattr(model, "steps"):
        return model[-1].gate_weights(model[:-1].transform(X))
    return model.gate_weights(X)


# -- one run ----------------------------------------------------------------------------

def run_one(setting, gate_dropout, seed, data_home=SHARED_DATA, return_model=False):
    """Fit one model and measure its gates and its test metrics; a dict of results."""
    X_train, y_train, X_test, y_test = make_data(setting, seed, data_home)
    model = make_model(setting, gate_dropout, seed)
    row = dict(setting=setting.name, dataset=setting.dataset, gate_dropout=gate_dropout,
               seed=seed)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GatePolarizationWarning)
        try:
            model.fit(X_train, y_train)
        except NonFiniteLossError as exc:
            row.update(status="non-finite loss", fit_s=time.perf_counter() - start,
                       error=str(exc)[:120])
            return (row, None) if return_model else row
    row["fit_s"] = time.perf_counter() - start
    row["status"] = "ok"
    row["warning_fired"] = any(issubclass(w.category, GatePolarizationWarning) for w in caught)

    weights = _gate_weights(model, X_test)  # (n_test, n_tasks, n_experts)
    utilization = weights.mean(axis=0)  # (n_tasks, n_experts)
    entropy = normalized_entropy(utilization)
    row.update(
        polarized=bool(polarized_tasks(utilization)),
        n_polarized_tasks=len(polarized_tasks(utilization)),
        n_dead=len(dead_experts(utilization)),
        entropy=float(entropy.mean()),
        min_entropy=float(entropy.min()),
        max_weight=float(utilization.max()),
        polarized_rows=float(polarized_row_share(weights).mean()),
    )
    tasks = list(y_test.columns)
    if setting.dataset == "synthetic":
        for name, metric in (("r2", "r2"), ("mse", "mean_squared_error")):
            scores = task_scores(model, X_test, y_test, metric=metric)
            row.update({f"{name}_{task}": scores[task] for task in tasks})
    else:
        scores = task_scores(model, X_test, y_test, metric="roc_auc")
        row.update({f"auc_{task}": scores[task] for task in tasks})
    return (row, model) if return_model else row


# -- tables -----------------------------------------------------------------------------

def summarize(runs):
    """One row per setting and gate_dropout: shares and means over the seeds."""
    ok = runs[runs["status"] == "ok"]
    metric_columns = [c for c in ok.columns if c.startswith(("r2_", "mse_", "auc_"))]
    groups = ok.groupby(["setting", "gate_dropout"], sort=False)
    summary = groups.agg(
        n_runs=("seed", "size"),
        polarized_share=("polarized", "mean"),
        mean_dead=("n_dead", "mean"),
        mean_entropy=("entropy", "mean"),
        polarized_rows=("polarized_rows", "mean"),
        warning_share=("warning_fired", "mean"),
        fit_s=("fit_s", "mean"),
    )
    summary = summary.join(groups[metric_columns].mean())
    failed = runs[runs["status"] != "ok"].groupby(["setting", "gate_dropout"]).size()
    summary.insert(1, "n_failed", failed.reindex(summary.index).fillna(0).astype(int))
    return summary.reset_index()


def _cell(value):
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else f"{value:.3f}"
    return str(value)


def markdown_table(frame):
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def wilson_interval(k, n, z=1.96):
    """95% Wilson interval of a share k/n."""
    if n == 0:
        return np.nan, np.nan
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


# -- figures ----------------------------------------------------------------------------

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_shares(summary, path):
    """Share of polarized runs (with 95% intervals) and mean dead experts vs gate_dropout."""
    plt = _pyplot()
    settings = list(dict.fromkeys(summary["setting"]))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / len(GATE_DROPOUTS)
    x = np.arange(len(settings))
    for i, gate_dropout in enumerate(GATE_DROPOUTS):
        part = summary[summary["gate_dropout"] == gate_dropout].set_index("setting").reindex(settings)
        shares = part["polarized_share"].to_numpy(dtype=float)
        n = part["n_runs"].fillna(0).to_numpy(dtype=int)
        low, high = np.array([wilson_interval(round(s * k), k) for s, k in zip(shares, n)]).T
        offset = x + (i - 1) * width
        axes[0].bar(offset, shares, width, label=f"gate_dropout={gate_dropout:g}",
                    yerr=[shares - low, high - shares], capsize=3)
        axes[1].bar(offset, part["mean_dead"], width, label=f"gate_dropout={gate_dropout:g}")
    for ax, label in zip(axes, ["share of polarized runs", "mean number of dead experts"]):
        ax.set_xticks(x, settings, rotation=20)
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    axes[0].set_ylim(0, 1.05)
    axes[0].set_title("Polarized runs (a gate > 90% on one expert), 95% Wilson intervals")
    axes[1].set_title("Dead experts (< 1% mean weight for every task)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_pair(setting, seed, path_heatmap, path_history, data_home=SHARED_DATA):
    """Utilisation heatmaps and histories: one seed without gate dropout and with 0.1."""
    from sk_mmoe.plotting import plot_expert_utilization, plot_utilization_history

    plt = _pyplot()
    fitted = {}
    for gate_dropout in (0.0, 0.1):
        row, model = run_one(setting, gate_dropout, seed, data_home, return_model=True)
        fitted[gate_dropout] = (row, model)
    X_test = make_data(setting, seed, data_home)[2]
    width = max(10, setting.n_experts * 0.9)
    fig, axes = plt.subplots(2, 1, figsize=(width, 5))
    for ax, (gate_dropout, (row, model)) in zip(axes, fitted.items()):
        if model is None:
            ax.set_title(f"gate_dropout={gate_dropout:g}: {row['status']}")
            continue
        plot_expert_utilization(model, X_test, ax=ax)
        ax.set_title(f"{setting.name}, seed {seed}, gate_dropout={gate_dropout:g}: "
                     f"polarized={row['polarized']}, dead experts={row['n_dead']}")
    fig.tight_layout()
    fig.savefig(path_heatmap, dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    for ax, (gate_dropout, (row, model)) in zip(axes, fitted.items()):
        if model is None:
            continue
        # The task whose gate concentrates most, so the polarized one when there is one.
        weights = _gate_weights(model, X_test).mean(axis=0)
        task = int(weights.max(axis=1).argmax())
        plot_utilization_history(model, task=list(model.task_names_)[task], ax=ax)
        ax.set_title(f"gate_dropout={gate_dropout:g}: {ax.get_title()}", fontsize=9)
        ax.legend(fontsize=6, ncol=4)
    fig.tight_layout()
    fig.savefig(path_history, dpi=100)
    plt.close(fig)


# -- report -----------------------------------------------------------------------------

def _share_text(summary, name):
    part = summary[summary["setting"] == name].set_index("gate_dropout")
    shares = ", ".join(
        f"{part.loc[g, 'polarized_share']:.0%} at {g:g}" for g in GATE_DROPOUTS if g in part.index
    )
    dead = " / ".join(f"{part.loc[g, 'mean_dead']:.1f}" for g in GATE_DROPOUTS if g in part.index)
    return f"`{name}`: polarized runs {shares}; mean dead experts {dead}"


def write_report(out, settings, exploration, runs, summary, figure_seed, args, elapsed):
    described = {s.name: s for s in settings}
    explored = exploration.groupby("setting", sort=False).agg(
        n_runs=("seed", "size"),
        n_failed=("status", lambda s: int((s != "ok").sum())),
        polarized_share=("polarized", "mean"),
        mean_dead=("n_dead", "mean"),
        mean_entropy=("entropy", "mean"),
        mean_max_weight=("max_weight", "mean"),
        polarized_rows=("polarized_rows", "mean"),
    ).reset_index()
    explored.insert(1, "description", [described[n].description for n in explored["setting"]])
    ok = runs[runs["status"] == "ok"]
    signal = ok["polarized"] | (ok["n_dead"] > 0)
    agreement = float((signal == ok["warning_fired"]).mean()) if len(ok) else np.nan
    columns_common = ["setting", "gate_dropout", "n_runs", "n_failed", "polarized_share",
                      "mean_dead", "mean_entropy", "polarized_rows", "warning_share", "fit_s"]

    def table_for(dataset):
        names = [s for s in study_names(args) if described[s].dataset == dataset]
        part = summary[summary["setting"].isin(names)]
        metrics = [c for c in part.columns if c.startswith(("r2_", "mse_", "auc_"))]
        part = part[columns_common + metrics].dropna(axis=1, how="all")
        return markdown_table(part) if len(part) else "(not run)"

    study = [described[n] for n in study_names(args)]
    lines = [
        "# Gate polarization with and without gate dropout",
        "",
        SUMMARY.strip() if not args.smoke else "Smoke run: numbers are meaningless.",
        "",
        "Measured per run: " + "; ".join(_share_text(summary, s.name) for s in study) + ".",
        "",
        "## Definitions",
        "",
        "All measures are those of `sk_mmoe.diagnostics`, computed on each run's held-out "
        "test rows after training. A run is **polarized** when some task's gate puts more "
        "than 90% of its mean weight on one expert (`polarized_tasks`); an expert is **dead** "
        "when its mean weight is under 1% for every task (`dead_experts`); `mean_entropy` is "
        "the normalized entropy of each task's mean utilisation (1 = even, 0 = one expert), "
        "averaged over tasks; `polarized_rows` is the share of rows whose largest gate weight "
        "exceeds 0.9 (`polarized_row_share`), averaged over tasks. `warning_share` is the "
        "share of runs in which `fit` issued a `GatePolarizationWarning` (the callback judges "
        "the last epoch on up to 2048 training rows); it agrees with \"polarized or some "
        f"expert dead on the test rows\" in {agreement:.1%} of the study's runs. Metrics are "
        "means over the seeds of the test R² and MSE per task (synthetic) or test ROC AUC per "
        "task (census). `fit_s` is the mean fit time in seconds.",
        "",
        "## 1. Exploration at gate_dropout = 0",
        "",
        f"{EXPLORATION_SEEDS if not args.smoke else 1} seed(s) per setting. Synthetic data: "
        "`make_multitask_regression(n_features=10, correlation=0.5)`, "
        f"{EXPLORATION[0].n_train} training and {EXPLORATION[0].n_test} test rows, features "
        "transformed as stated; census: group 1 (income_50k, never_married), "
        f"{CENSUS['n_train']} training and {CENSUS['n_test']} test rows drawn from the "
        "99,762-row test file, one-hot encoded categories. All models: experts (16,), "
        "towers (8,), batch 256, Adam.",
        "",
        markdown_table(explored),
        "",
        "## 2. The study",
        "",
        f"{args.n_seeds} seeds per setting and gate_dropout (seed s draws the data and "
        "initialises the model; the three gate_dropout values share each seed's data).",
        "",
        "Settings: " + "; ".join(f"`{s.name}`: {s.description}, {s.max_epochs} epochs" for s in study)
        + ".",
        "",
        "### Synthetic (make_multitask_regression, p = 0.5)",
        "",
        table_for("synthetic"),
        "",
        "### Census-income, group 1",
        "",
        table_for("census") if any(s.dataset == "census" for s in study) else
        f"(skipped: {CENSUS_FILE} is not in {args.data_home})",
        "",
        "## Figures",
        "",
        "![share of polarized runs](polarization_share.png)",
        "",
        f"Utilisation of `{FIGURE_SETTING}`, seed {figure_seed}, without gate dropout (top) "
        "and with gate_dropout = 0.1 (bottom), on the test rows:",
        "",
        "![utilisation heatmaps](polarization_heatmap.png)",
        "",
        "The same two runs, epoch by epoch (the task whose gate concentrates most):",
        "",
        "![utilisation over epochs](polarization_history.png)",
        "",
        "Every run is in `polarization_runs.csv`, the exploration in "
        "`polarization_exploration.csv`, the study's means in `polarization_summary.csv`.",
        "",
        "## Reproduce",
        "",
        f"- command: `python benchmarks/polarization.py{' --smoke' if args.smoke else ''}` "
        "(from the repository root; census data read from `../shared/data`)",
        f"- machine: {os.cpu_count()}-core CPU ({platform.machine()}), no GPU, one torch "
        "thread, one process",
        f"- wall time: {elapsed / 60:.1f} min",
        f"- versions: sk_mmoe {sk_mmoe.__version__}, torch {torch.__version__}, "
        f"scikit-learn {_version('sklearn')}, skorch {_version('skorch')}, "
        f"numpy {np.__version__}, Python {platform.python_version()}",
        "",
    ]
    (out / "polarization.md").write_text("\n".join(lines))


def _version(module):
    return __import__(module).__version__


# Written after reading the full run's numbers; the measured numbers follow it.
SUMMARY = """
Summary: TODO after the full run.
"""


def study_names(args):
    names = STUDY
    if not census_available(args.data_home):
        names = [n for n in names if not n.startswith("census")]
    return names


# -- main -------------------------------------------------------------------------------

def _run_all(jobs, path, log, start):
    rows = []
    for setting, gate_dropout, seed in jobs:
        row = run_one(setting, gate_dropout, seed, log.data_home)
        # Wall time since the script started, so that a report rebuilt from the CSVs
        # (--from-csv) can state how long the study took.
        row["elapsed_s"] = time.perf_counter() - start
        rows.append(row)
        pd.DataFrame(rows).to_csv(path, index=False)
        if not log.smoke:
            print(f"{setting.name} gd={gate_dropout:g} seed={seed}: {row['status']} "
                  f"polarized={row.get('polarized')} dead={row.get('n_dead')} "
                  f"{row['fit_s']:.1f}s", flush=True)
    return pd.DataFrame(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    parser.add_argument("--n-seeds", type=int, default=None, help="seeds per study cell (20)")
    parser.add_argument("--data-home", type=Path, default=SHARED_DATA,
                        help="folder holding census-income.test.gz")
    parser.add_argument("--from-csv", action="store_true",
                        help="rebuild the figures and report from the CSVs in --out")
    args = parser.parse_args(argv)
    if args.n_seeds is None:
        args.n_seeds = 2 if args.smoke else 20
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    settings = [smoke_setting(s) if args.smoke else s for s in EXPLORATION]
    by_name = {s.name: s for s in settings}
    have_census = census_available(args.data_home)
    if not have_census:
        print(f"{CENSUS_FILE} is not in {args.data_home}: census settings skipped", flush=True)
    usable = [s for s in settings if have_census or s.dataset != "census"]

    explore_seeds = 1 if args.smoke else EXPLORATION_SEEDS
    exploration_path = args.out / "polarization_exploration.csv"
    runs_path = args.out / "polarization_runs.csv"
    study = [by_name[n] for n in study_names(args)]
    if args.from_csv:
        exploration, runs = pd.read_csv(exploration_path), pd.read_csv(runs_path)
        start -= runs["elapsed_s"].max()
    else:
        jobs = [(s, 0.0, seed) for s in usable for seed in range(explore_seeds)]
        exploration = _run_all(jobs, exploration_path, args, start)
        jobs = [(s, g, seed) for s in study for seed in range(args.n_seeds) for g in GATE_DROPOUTS]
        runs = _run_all(jobs, runs_path, args, start)
    summary = summarize(runs)
    summary.insert(1, "dataset", summary["setting"].map(lambda n: by_name[n].dataset))
    summary.to_csv(args.out / "polarization_summary.csv", index=False)

    plot_shares(summary, args.out / "polarization_share.png")
    figure_setting = by_name[FIGURE_SETTING]
    polarized = runs[(runs["setting"] == FIGURE_SETTING) & (runs["gate_dropout"] == 0)
                     & (runs["status"] == "ok") & runs["polarized"].astype(bool)]
    figure_seed = int(polarized["seed"].iloc[0]) if len(polarized) else 0
    plot_pair(figure_setting, figure_seed, args.out / "polarization_heatmap.png",
              args.out / "polarization_history.png", args.data_home)

    elapsed = time.perf_counter() - start
    write_report(args.out, settings, exploration, runs, summary, figure_seed, args, elapsed)
    print(f"wrote {args.out / 'polarization.md'} in {elapsed:.0f} s", flush=True)
    return summary


if __name__ == "__main__":
    main()
