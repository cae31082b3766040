"""Figure 4 of the MMoE paper: Shared-Bottom, OMoE and MMoE against task correlation.

Ma et al. (KDD 2018), Section 4.3 and Figures 4-5: on the synthetic two-task
regression of Section 3.2, train the three architectures with matched parameter
counts at task correlations p in {0.5, 0.9, 1.0}, many times with fresh data and
initialisation, and compare their final test losses, loss curves and the spread
of final losses over runs (trainability, Figure 5).

For each (p, seed) one data set is drawn with ``make_multitask_regression`` (its
default ``alpha_std``, tuned to the paper's Figure 2) and split into train,
validation and test rows; the three models train on the same rows. The learning
rate of each (model, p) is picked from {1e-4, 1e-3, 1e-2} by the final
validation loss on separate lr-selection seeds, never on test. The loss is the
mean squared error in the labels' units, averaged over the two tasks, as the
paper reports the average loss.

Run from the repository root::

    python benchmarks/synthetic_figure4.py

It writes ``synthetic_figure4.md``, ``.csv`` and ``.png`` under ``--out``
(default ``benchmarks/results``). ``--alpha-std A`` passes ``alpha_std=A`` to the
generator instead of its default and writes ``synthetic_figure4_alphaA.*`` instead
(``synthetic_figure4_alpha1.*`` for ``--alpha-std 1``: smooth sine terms, the paper's
loss scale but not its Figure 2 label correlations). ``--seeds`` and ``--lr-seeds``
shorten a run (fewer evaluation or lr-selection seeds); the report states it.
``--jobs N`` runs the fits in N worker processes of one torch thread each (every fit
seeds its own data and initialisation, so only the wall time changes).
"""

import inspect
import itertools
import multiprocessing
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import torch

from _common import command_line, log, markdown_table, parser, provenance
from sk_mmoe import MMoERegressorClassifier
from sk_mmoe.datasets import make_multitask_regression

CORRELATIONS = (0.5, 0.9, 1.0)
LEARNING_RATES = (1e-4, 1e-3, 1e-2)
# The paper's synthetic setting: 8 experts of 16 units, towers of 8; a shared bottom of
# 113 units has about as many parameters as the 8 experts (as in sk_mmoe/__main__.py).
MODELS = {
    "Shared-Bottom": dict(architecture="shared_bottom", expert_layer_sizes=(113,)),
    "OMoE": dict(architecture="omoe", n_experts=8, expert_layer_sizes=(16,)),
    "MMoE": dict(architecture="mmoe", n_experts=8, expert_layer_sizes=(16,)),
}
# Final losses read off the paper's Figure 4.
PAPER = {(0.5, "Shared-Bottom"): 0.25, (0.5, "OMoE"): 0.145, (0.5, "MMoE"): 0.08,
         (1.0, "Shared-Bottom"): 0.20, (1.0, "OMoE"): 0.08, (1.0, "MMoE"): 0.07}
# Label correlation read off the paper's Figure 2 at the p of this benchmark.
FIGURE_2 = {0.5: 0.07, 0.9: 0.30, 1.0: 1.0}
# The generator's default alpha_std (tuned to Figure 2), for the report's wording.
DEFAULT_ALPHA_STD = inspect.signature(make_multitask_regression).parameters["alpha_std"].default

FULL = dict(n_train=8000, n_valid=1000, n_test=2000, epochs=25, batch_size=256,
            seeds=range(20), lr_seeds=(100, 101))
SMOKE = dict(n_train=200, n_valid=50, n_test=50, epochs=2, batch_size=100,
             seeds=range(2), lr_seeds=(100,))


def mse(y_true, y_pred):
    """Mean over the two tasks of each task's mean squared error."""
    return float(np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2))


def train_one(model_name, correlation, seed, lr, size, alpha_std=None):
    """Train one model on one fresh data set; per-epoch losses and final test MSE per task.

    ``partial_fit`` trains one epoch per call so that the validation and test losses can
    be measured after every epoch (the curves); nothing is selected on test.
    ``alpha_std=None`` leaves the generator's default.
    """
    n_rows = size["n_train"] + size["n_valid"] + size["n_test"]
    extra = {} if alpha_std is None else {"alpha_std": alpha_std}
    X, y = make_multitask_regression(n_samples=n_rows, correlation=correlation,
                                     random_state=seed, **extra)
    cut = np.cumsum([size["n_train"], size["n_valid"]])
    X_train, X_valid, X_test = np.split(X, cut)
    y_train, y_valid, y_test = np.split(y, cut)
    # Raw inputs, as in the paper: the default embedding ("auto": piecewise-linear from
    # 1,000 rows) would make the first layers 16 times wider and unmatch the parameter counts.
    model = MMoERegressorClassifier(
        **MODELS[model_name], tower_layer_sizes=(8,), gate_dropout=0.0, max_epochs=1,
        batch_size=size["batch_size"], lr=lr, numeric_embedding=None, random_state=seed,
    )
    valid_curve, test_curve = [], []
    for _ in range(size["epochs"]):
        model.partial_fit(X_train, y_train)
        valid_curve.append(mse(y_valid, model.predict(X_valid)))
        test_curve.append(mse(y_test, model.predict(X_test)))
    test_pred = model.predict(X_test)
    task_mse = ((y_test - test_pred) ** 2).mean(axis=0)
    return {
        "model": model_name, "p": correlation, "seed": seed, "lr": lr,
        "valid_mse": valid_curve[-1], "test_mse": test_curve[-1],
        "test_mse_task_1": float(task_mse[0]), "test_mse_task_2": float(task_mse[1]),
        # The loss as a share of the label variance: 1 - R^2, averaged over the tasks.
        "test_relative": float(np.mean(task_mse / y_test.var(axis=0))),
        "label_var": float(y_test.var(axis=0).mean()),
        # Pearson correlation of the two labels over all rows of the draw (Figure 2).
        "label_corr": float(np.corrcoef(y[:, 0], y[:, 1])[0, 1]),
        "n_params": sum(p.numel() for p in model.module_.parameters()),
        "train_loss_last": float(model.history[-1, "train_loss"]),
        **{f"valid_mse_epoch_{e + 1}": v for e, v in enumerate(valid_curve)},
        **{f"test_mse_epoch_{e + 1}": v for e, v in enumerate(test_curve)},
    }


def _init_worker():
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*polariz.*")


def _train_task(task, size, alpha_std):
    return train_one(*task, size, alpha_std)


def run_fits(tasks, size, alpha_std=None, jobs=1):
    """``train_one(*task, size, alpha_std)`` for each task, in order, as they finish.

    With ``jobs > 1`` the fits run in that many worker processes of one torch thread each;
    every fit seeds its own data and initialisation, so the results do not depend on it.
    """
    if jobs == 1:
        for task in tasks:
            yield train_one(*task, size, alpha_std)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker) as pool:
        yield from pool.map(_train_task, tasks, itertools.repeat(size),
                            itertools.repeat(alpha_std))


def select_learning_rates(size, alpha_std=None, jobs=1):
    """The lr of each (p, model) with the lowest mean final validation loss."""
    tasks = [(name, p, seed, lr) for p in CORRELATIONS for name in MODELS
             for lr in LEARNING_RATES for seed in size["lr_seeds"]]
    rows = []
    for task, result in zip(tasks, run_fits(tasks, size, alpha_std, jobs)):
        rows.append({**result, "stage": "lr_selection"})
        name, p, seed, lr = task
        if seed == size["lr_seeds"][-1]:
            log(f"lr selection p={p} {name} lr={lr:g}: valid "
                f"{np.mean([r['valid_mse'] for r in rows[-len(size['lr_seeds']):]]):.4f}")
    frame = pd.DataFrame(rows)
    means = frame.groupby(["p", "model", "lr"])["valid_mse"].mean()
    chosen = {key: means.loc[key].idxmin() for key in means.index.droplevel("lr").unique()}
    return chosen, frame


def summary_rows(final, epochs):
    valid_columns = [f"valid_mse_epoch_{e + 1}" for e in range(epochs)]
    rows = []
    for (p, name), cell in final.groupby(["p", "model"], sort=False):
        median_valid = np.median(cell[valid_columns].to_numpy(), axis=0)
        rows.append({
            "p": p, "model": name, "lr": cell["lr"].iloc[0], "n_runs": len(cell),
            "mean": cell["test_mse"].mean(), "median": cell["test_mse"].median(),
            "std": cell["test_mse"].std(), "rel_mean": cell["test_relative"].mean(),
            "rel_median": cell["test_relative"].median(),
            "label_var": cell["label_var"].mean(), "n_params": cell["n_params"].iloc[0],
            "label_corr": cell["label_corr"].mean() if "label_corr" in cell else np.nan,
            # An early minimum of the validation curve means the later epochs overfit.
            "best_valid_epoch": int(np.argmin(median_valid)) + 1,
            "paper": PAPER.get((p, name)),
        })
    return pd.DataFrame(rows)


def paired_wins(final):
    """Per p, the share of seeds where MMoE's final test loss beats each baseline's."""
    losses = final.pivot_table(index=["p", "seed"], columns="model", values="test_mse")
    return {
        (p, other): float((cell["MMoE"] < cell[other]).mean())
        for p, cell in losses.groupby(level="p")
        for other in ("Shared-Bottom", "OMoE")
    }


def plot(final, epochs, path, dpi=100):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(CORRELATIONS), figsize=(5 * len(CORRELATIONS), 8))
    test_columns = [f"test_mse_epoch_{e + 1}" for e in range(epochs)]
    for j, p in enumerate(CORRELATIONS):
        curves, hists = axes[0, j], axes[1, j]
        cell_p = final[final["p"] == p]
        # Relative to each seed's label variance, so the spread is the models', not the data's.
        bins = np.linspace(cell_p["test_relative"].min(), cell_p["test_relative"].max(), 21)
        for name in MODELS:
            cell = cell_p[cell_p["model"] == name]
            values = cell[test_columns].to_numpy()
            x = np.arange(1, epochs + 1)
            curves.plot(x, np.median(values, axis=0), label=f"{name} (median)")
            curves.fill_between(x, *np.percentile(values, [25, 75], axis=0), alpha=0.2)
            hists.hist(cell["test_relative"], bins=bins, alpha=0.5, label=name)
        curves.set(title=f"p = {p}: test loss per epoch", xlabel="epoch",
                   ylabel="test MSE, mean of 2 tasks")
        hists.set(title=f"p = {p}: final test loss over {cell['seed'].nunique()} seeds",
                  xlabel="final test MSE / label variance (1 - R^2), mean of 2 tasks",
                  ylabel="runs")
        curves.legend()
        hists.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


_FIGURE2_LR_TEXT = """With lr 1e-3 and 1e-2 the validation loss bottoms out within a few epochs and
then rises, and their final training loss is far below lr 1e-4's (column
`train_loss_last` of the csv, standardised targets): the models memorise what they
cannot generalise. The lowest validation losses reached by the three architectures are close,
so with these data the limit is what the rows reveal, not the architecture."""


def _figure2_data_text(summary, chosen, size):
    """Why the losses at the Figure-2 tuned alpha_std are not the paper's."""
    return f"""The absolute losses are not comparable: with `alpha_std` tuned to the paper's Figure 2
(label correlations), the ten sine terms have frequencies of order 8, so the labels
have a variance of about {summary['label_var'].mean():.1f} of which only 1 comes from the
linear part, and much of the high-frequency part is not learnable from {size['n_train']:,}
rows by networks of this size: they fit it on the training rows and lose on new rows
(see the learning rates chosen on validation, {", ".join(sorted({f"{lr:g}" for lr in chosen.values()}))}, and the
epoch at which the median validation loss is lowest, in the table). The paper's losses
(0.07-0.25) imply labels of much lower variance or much smoother sines. Compare the
columns "/ label var" (1 - R^2, averaged over the tasks) and the ranking, not the
absolute values."""


def _smooth_data_text(summary, alpha_std, met, n_rows):
    """What a non-default alpha_std reproduces of the paper: label correlations, loss scale."""
    at = summary.set_index(["p", "model"])
    corr = {p: at.loc[p]["label_corr"].mean() for p in CORRELATIONS}
    # Figure 2 is matched when the mean label correlation is within 0.1 of it at p < 1.
    figure2_met = all(abs(corr[p] - FIGURE_2[p]) <= 0.1 for p in (0.5, 0.9))
    ratios = {key: at.loc[key, "median"] / paper for key, paper in PAPER.items()}
    factor = max(max(r, 1 / r) for r in ratios.values())
    scale_met = factor < 3
    ratio_text = "; ".join(
        f"p={p:g}: " + ", ".join(f"{name} {at.loc[(p, name), 'median']:.3f} vs {PAPER[(p, name)]:g}"
                                 for name in MODELS)
        for p in (0.5, 1.0))
    corr_text = ", ".join(f"p={p:g}: {corr[p]:.2f} (Figure 2: {FIGURE_2[p]:.2f})"
                          for p in CORRELATIONS)
    corr_extra = "" if figure2_met else f""" The labels
are much more correlated than the paper's Figure 2 says its tasks' labels are:
`benchmarks/results/label_correlation.md` shows the label correlation rising as alpha_std
falls (at p=0.5 and p=0.9: 0.117 and 0.313 at the default 8, 0.156 and 0.462 at 4, the
smallest alpha_std it tries), and only alpha_std of 7 to 10 fit Figure 2 there; alpha_std={alpha_std:g}
lies outside that range."""
    return f"""This run uses `alpha_std={alpha_std:g}` instead of the generator's default
{DEFAULT_ALPHA_STD:g} (which was tuned to the label correlations of the paper's Figure 2): the ten
sine terms have frequencies of order {alpha_std:g}, and the labels have a variance of about
{summary['label_var'].mean():.1f}, of which 1 comes from the linear part.
**Label correlations (Figure 2): {"reproduced" if figure2_met else "NOT reproduced"}.** The mean
Pearson correlation of the two labels over the draws of this run (all {n_rows:,} rows of each
seed) is {corr_text} (criterion: within 0.1 of Figure 2 at p=0.5 and p=0.9).{corr_extra}
**Loss scale (Figure 4): {"reproduced" if scale_met else "NOT reproduced"}.** The six medians
for which Figure 4 gives a value differ from the paper's by at most a factor of {factor:.1f}
either way (criterion: less than 3; median ours vs paper: {ratio_text}).
**Issue target: {"met" if met else "NOT met"}** (see the first sentence of this section). So this
setting gives {"the paper's loss scale" if scale_met else "a loss scale unlike the paper's"} on tasks whose labels are {"correlated as in" if figure2_met else "more correlated than in"}
Figure 2; the default run (`synthetic_figure4.md`) gives the paper's label
correlations but a loss scale far from Figure 4's."""


def _lr_curve_text(lr_frame, epochs):
    """Per lr, over the (p, model) cells: where the mean validation curve bottoms out."""
    valid_columns = [f"valid_mse_epoch_{e + 1}" for e in range(epochs)]
    curves = lr_frame.groupby(["p", "model", "lr"], sort=False)[valid_columns].mean()
    parts = []
    for lr in LEARNING_RATES:
        cells = curves.xs(lr, level="lr").to_numpy()
        early = int((np.argmin(cells, axis=1) < epochs - 1).sum())
        rise = np.mean(cells[:, -1] / cells.min(axis=1) - 1)
        parts.append(f"lr={lr:g}: lowest before the last epoch in {early} of {len(cells)} "
                     f"cells, final on average {rise:.0%} above the lowest")
    finals = lr_frame.groupby(["p", "model", "lr"], sort=False)["valid_mse"].mean()
    chosen = finals.groupby(level=["p", "model"], sort=False).idxmin().map(lambda key: key[-1])
    n_edge = int((chosen == max(LEARNING_RATES)).sum())
    edge = (f" The chosen lr is the largest of the grid, {max(LEARNING_RATES):g}, in {n_edge} of "
            f"{len(chosen)} cells, so a larger lr might lower those losses further (not tried)."
            if n_edge else "")
    return ("Over the (p, model) cells, " + "; ".join(parts) + ". A final value well above "
            "the lowest means that learning rate overfits (or is unstable) late in training."
            + edge)


def report(final, lr_frame, size, command, elapsed, smoke, alpha_std=None,
           stem="synthetic_figure4", jobs=1):
    """The markdown report. ``alpha_std=None``: the generator's default (Figure-2 tuned)."""
    summary = summary_rows(final, size["epochs"])
    chosen = {(p, m): lr for p, m, lr in zip(summary["p"], summary["model"], summary["lr"])}
    wins = paired_wins(final)
    at = summary.set_index(["p", "model"])
    sb, omoe, mmoe = (at.loc[(0.5, name), "median"] for name in MODELS)
    ratio = mmoe / sb
    met = ratio <= 0.5 and mmoe < omoe
    table = markdown_table(
        ["p", "model", "lr", "runs", "mean", "median", "std", "mean / label var",
         "median / label var", "lowest median valid loss at epoch", "paper (Fig. 4)"],
        [[f"{r.p:g}", r.model, f"{r.lr:g}", r.n_runs, f"{r['mean']:.3f}",
          f"{r['median']:.3f}", f"{r['std']:.3f}", f"{r.rel_mean:.3f}",
          f"{r.rel_median:.3f}", f"{r.best_valid_epoch} of {size['epochs']}",
          "" if r.paper is None or pd.isna(r.paper) else f"{r.paper:g}"]
         for _, r in summary.iterrows()],
    )
    lr_means = lr_frame.groupby(["p", "model", "lr"], sort=False)["valid_mse"].mean()
    valid_columns = [f"valid_mse_epoch_{e + 1}" for e in range(size["epochs"])]
    # Mean validation curve of each (p, model, lr): its minimum over epochs and where.
    curves = lr_frame.groupby(["p", "model", "lr"], sort=False)[valid_columns].mean()
    lr_table = markdown_table(
        ["p", "model", *(f"lr={lr:g}: final (lowest at epoch)" for lr in LEARNING_RATES),
         "chosen"],
        [[f"{p:g}", name,
          *(f"{lr_means.loc[(p, name, lr)]:.3f} ({curves.loc[(p, name, lr)].min():.3f} at "
            f"{int(np.argmin(curves.loc[(p, name, lr)].to_numpy())) + 1})"
            for lr in LEARNING_RATES),
          f"{chosen[(p, name)]:g}"] for p in CORRELATIONS for name in MODELS],
    )
    win_text = "; ".join(
        f"p={p:g}: {wins[(p, 'Shared-Bottom')]:.0%} vs Shared-Bottom, {wins[(p, 'OMoE')]:.0%} vs OMoE"
        for p in CORRELATIONS)
    n_unsettled = int((summary["best_valid_epoch"] == size["epochs"]).sum())
    order = {p: " < ".join(at.loc[p]["median"].sort_values().index) for p in CORRELATIONS}
    n_seeds = len(size["seeds"])
    banner = "\n**SMOKE RUN: tiny sizes, the numbers mean nothing.**\n" if smoke else ""
    n_rows = size['n_train'] + size['n_valid'] + size['n_test']
    figure2_setting = alpha_std is None or alpha_std == DEFAULT_ALPHA_STD
    if figure2_setting:
        data_text = _figure2_data_text(summary, chosen, size)
        data_call = (f"""`make_multitask_regression(n_samples={n_rows}, n_features=100,
  correlation=p, random_state=seed)` with its defaults (alpha_std={DEFAULT_ALPHA_STD:g}, n_sin=10, scale=1,
  noise_std=0.1)""")
        epoch_tail = ("while the larger learning rates overfit within a few\n"
                      "  epochs (see the lr table).")
        lr_text = _FIGURE2_LR_TEXT
    else:
        data_text = _smooth_data_text(summary, alpha_std, met, n_rows)
        data_call = (f"""`make_multitask_regression(n_samples={n_rows}, n_features=100,
  correlation=p, alpha_std={alpha_std:g}, random_state=seed)` (alpha_std={alpha_std:g} instead of the
  generator's default {DEFAULT_ALPHA_STD:g}) with its other defaults (n_sin=10, scale=1, noise_std=0.1)""")
        epoch_tail = ("while the lr table shows where each learning rate's\n"
                      "  mean validation curve bottoms out.")
        lr_text = _lr_curve_text(lr_frame, size["epochs"])
    seed_note = ("the issue asks for at least 20" if n_seeds >= 20 or smoke else
                 "FEWER than the issue's 20, to finish in the time available")
    shortened = [f"{len(size[key])} instead of {len(FULL[key])} {what}"
                 for key, what in (("seeds", "evaluation seeds per cell"),
                                   ("lr_seeds", "lr-selection seeds per (p, model, lr)"))
                 if not smoke and len(size[key]) != len(FULL[key])]
    shortened_text = ("\n- Shortened for time with `--seeds` / `--lr-seeds`: "
                      + "; ".join(shortened) + "." if shortened else "")
    title_alpha = "" if alpha_std is None else f", alpha_std={alpha_std:g}"
    return f"""# MMoE paper, Figure 4: Shared-Bottom, OMoE and MMoE against task correlation{title_alpha}
{banner}
## Paper vs ours

Target (issue 3): at p=0.5, MMoE's median final loss at most 0.5 x Shared-Bottom's and
below OMoE's. Ours at p=0.5: median MMoE {mmoe:.3f}, OMoE {omoe:.3f}, Shared-Bottom
{sb:.3f}, ratio MMoE / Shared-Bottom = {ratio:.2f}: **target {"met" if met else "not met"}**.
Ranking of the medians (best first): p=0.5: {order[0.5]}; p=0.9: {order[0.9]};
p=1.0: {order[1.0]}. Share of seeds where MMoE's final test loss is below the other
model's on the same data: {win_text}. The paper (read off Figure 4) has MMoE < OMoE < Shared-Bottom at
every p: 0.08 / 0.145 / 0.25 at p=0.5 and 0.07 / 0.08 / 0.20 at p=1.
{data_text}

## Setup

- Data: {data_call}: a fresh draw of the weight vectors, sine terms and rows per seed and
  p (one seed gives the same rows, weight basis and sine terms at every p; only the
  mixing of w2 changes). Rows split in order into {size['n_train']:,} train / {size['n_valid']:,} validation /
  {size['n_test']:,} test; the three models of a (p, seed) train on the same rows.
- Models: Shared-Bottom with one bottom of 113 units, OMoE and MMoE with 8 experts of 16
  units, linear gates, towers of 8 units; ReLU. Parameter counts:
  {", ".join(f"{r.model} {r.n_params:,}" for _, r in summary[summary['p'] == CORRELATIONS[0]].iterrows())}.
  `gate_dropout=0`: the paper predates gate dropout (sk_mmoe's default is 0.1). The 100
  inputs enter as they are (`numeric_embedding=None`), as in the paper, not through the
  default piecewise-linear embedding.
- Training: Adam, batch {size['batch_size']}, {size['epochs']} epochs, random_state=seed
  (fresh initialisation per seed), regression targets standardised by the estimator.
  The loss is the test MSE in the labels' units averaged over the two tasks, after the
  last epoch (no early stopping, no selection of epochs).
- Learning rate: per (p, model), the lr in {{1e-4, 1e-3, 1e-2}} with the lowest mean final
  validation loss over the lr-selection seeds {list(size['lr_seeds'])} (their data are
  not the evaluation seeds' data), then used for all {n_seeds} evaluation seeds
  {size['seeds'].start}..{size['seeds'].stop - 1}. Nothing is chosen on test rows.

## Reductions versus the issue and the paper

- {n_seeds} seeds per cell ({seed_note}; the paper's Figure 5 uses
  200 runs).
- {size['n_train']:,} training rows, {size['epochs']} epochs and batch {size['batch_size']}:
  sized so that the whole run ({len(CORRELATIONS) * len(MODELS) * (len(LEARNING_RATES) * len(size['lr_seeds']) + n_seeds)} fits)
  fits about 30 minutes on one CPU core; the paper does not state its data size or
  training length here. The number of epochs is fixed, not chosen on validation: in
  {n_unsettled} of {len(summary)} cells the median validation loss was still falling at the last
  epoch (column "lowest median valid loss at epoch"), so longer training at the chosen
  lr could lower those losses, {epoch_tail}
- The lr was chosen on {len(size['lr_seeds'])} seed{"s" if len(size['lr_seeds']) != 1 else ""} per cell rather than per seed.{shortened_text}

## Final test loss (MSE, mean of the two tasks)

{table}

`lr` is the chosen learning rate; "/ label var" divides each task's MSE by its test
label variance before averaging (1 - R^2).

## Learning-rate selection: mean final validation loss

{lr_table}

In brackets: the lowest point of the mean validation curve over the {size['epochs']} epochs and
its epoch. {lr_text}

## Curves and trainability

`{stem}.png`, top row: median test loss per epoch (band: 25th-75th
percentile over seeds), as in Figure 4. Bottom row: histograms over seeds of the final
test loss divided by the label variance (1 - R^2), per model, as in Figure 5; the
division removes the spread that comes from the label variance of each seed's draw. `{stem}.csv` has one row per run
(stage `final` or `lr_selection`) with the per-epoch validation and test losses.

## Provenance

{provenance(command, elapsed, processes=jobs)}"""


def main(argv=None):
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument(
        "--alpha-std", type=float, default=None,
        help="alpha_std of make_multitask_regression (default: the generator's own, "
             f"{DEFAULT_ALPHA_STD:g}, not passed); when given, the result files get the "
             "suffix _alpha<value>, e.g. synthetic_figure4_alpha1.md")
    arguments.add_argument("--seeds", type=int, default=None,
                           help="number of evaluation seeds per cell (shortens a run)")
    arguments.add_argument("--lr-seeds", type=int, default=None,
                           help="number of lr-selection seeds (shortens a run)")
    arguments.add_argument("--jobs", type=int, default=1,
                           help="worker processes for the fits, one torch thread each "
                                "(default 1: all fits in this process)")
    args = arguments.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*polariz.*")
    size = dict(SMOKE if args.smoke else FULL)
    if args.seeds is not None:
        size["seeds"] = size["seeds"][:args.seeds]
    if args.lr_seeds is not None:
        size["lr_seeds"] = size["lr_seeds"][:args.lr_seeds]
    start = time.perf_counter()

    chosen, lr_frame = select_learning_rates(size, args.alpha_std, args.jobs)
    tasks = [(name, p, seed, chosen[(p, name)]) for p in CORRELATIONS
             for seed in size["seeds"] for name in MODELS]
    rows = []
    for (name, p, seed, _), result in zip(tasks, run_fits(tasks, size, args.alpha_std,
                                                            args.jobs)):
        rows.append({**result, "stage": "final"})
        if name == list(MODELS)[-1]:
            log(f"p={p} seed={seed}: " + ", ".join(
                f"{r['model']} {r['test_mse']:.3f}" for r in rows[-len(MODELS):]))
    final = pd.DataFrame(rows)
    elapsed = time.perf_counter() - start
    write_results(final, lr_frame, size, command_line("synthetic_figure4.py", argv), elapsed,
                  args.smoke, args.out, args.alpha_std, args.jobs)
    return summary_rows(final, size["epochs"])


def result_stem(alpha_std=None):
    """File name without extension: a suffix only when alpha_std is given."""
    return "synthetic_figure4" if alpha_std is None else f"synthetic_figure4_alpha{alpha_std:g}"


def write_results(final, lr_frame, size, command, elapsed, smoke, out, alpha_std=None,
                  jobs=1):
    """The csv (every run), the png (curves, histograms) and the markdown report."""
    out.mkdir(parents=True, exist_ok=True)
    stem = result_stem(alpha_std)
    pd.concat([final, lr_frame]).to_csv(out / f"{stem}.csv", index=False)
    plot(final, size["epochs"], out / f"{stem}.png", dpi=40 if smoke else 100)
    (out / f"{stem}.md").write_text(
        report(final, lr_frame, size, command, elapsed, smoke, alpha_std, stem, jobs))
    log(f"wrote {out / f'{stem}.md'} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
