"""Figures of the gates: who uses which expert, how that changed while training, and how
concentrated each row's gate is. Needs matplotlib (``pip install "sk-mmoe[plot]"``).

"""

import numpy as np

from .diagnostics import _gate_weights, expert_utilization
from .metrics import _final_model


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "sk_mmoe.plotting needs matplotlib, which is not installed. Install it with "
            "pip install 'sk-mmoe[plot]' (or pip install matplotlib)."
        ) from exc
    return plt


def _axes(ax):
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


def _task_index(model, task):
    """Position of ``task``, given by name or, where no task has that name, by position."""
    names = model.task_names_
    if task is None:
        return 0
    if task in names:
        return names.index(task)
    if isinstance(task, int) and not isinstance(task, bool) and 0 <= task < len(names):
        return task
    raise ValueError(
        f"task {task!r} is neither a fitted task name {names} nor a position below {len(names)}."
    )


def _expert_names(model, n_experts):
    """Tick labels: the expert's number, and its owner where some experts belong to a task
    (``"cgc"``, ``"ple"``)."""
    labels = getattr(model, "expert_labels_", None)
    if labels is None or all(label == "shared" for label in labels):
        return [str(e) for e in range(n_experts)]
    return [f"{e}\n{label}" for e, label in enumerate(labels)]


def _expert_colors(n_experts):
    """Distinct colours for up to 20 experts; beyond that, a continuous colormap."""
    plt = _pyplot()
    if n_experts <= 10:
        return [plt.get_cmap("tab10")(e) for e in range(n_experts)]
    if n_experts <= 20:
        return [plt.get_cmap("tab20")(e) for e in range(n_experts)]
    return [plt.get_cmap("viridis")(e / (n_experts - 1)) for e in range(n_experts)]


def plot_expert_utilization(estimator, X, *, ax=None, cmap="viridis"):
    """Heatmap of the mean gate weight of each expert (columns) for each task (rows).

    Parameters
    ----------
    estimator : MMoERegressorClassifier or Pipeline
        A fitted model, or a fitted Pipeline that ends in one.
    X : array-like of shape (n_samples, n_features)
    ax : matplotlib Axes, optional
    cmap : str, default="viridis"

    Returns
    -------
    ax : matplotlib Axes

    Notes
    -----
    Where experts belong to tasks (``"cgc"``, ``"ple"``), each tick names the owner
    (``expert_labels_``) under the expert's number.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sk_mmoe import MMoERegressorClassifier
    >>> X = np.random.RandomState(0).normal(size=(200, 4))
    >>> model = MMoERegressorClassifier(n_experts=4, max_epochs=3, random_state=0).fit(X, X[:, :2])
    >>> from sk_mmoe.plotting import plot_expert_utilization
    >>> ax = plot_expert_utilization(model, X)
    >>> ax.images[0].get_array().shape  # tasks x experts
    (2, 4)
    >>> cgc = MMoERegressorClassifier(architecture="cgc", n_experts=2, max_epochs=3,
    ...                               random_state=0).fit(X, X[:, :2])
    >>> [t.get_text().split() for t in plot_expert_utilization(cgc, X).get_xticklabels()]
    [['0', '0'], ['1', '1'], ['2', 'shared'], ['3', 'shared']]
    """
    ax = _axes(ax)
    model = _final_model(estimator)
    utilization = expert_utilization(estimator, X)
    image = ax.imshow(utilization, cmap=cmap, vmin=0, vmax=1, aspect="auto")
    n_tasks, n_experts = utilization.shape
    for t in range(n_tasks):
        for e in range(n_experts):
            value = utilization[t, e]
            ax.text(e, t, f"{value:.2f}", ha="center", va="center",
                    color="black" if value > 0.5 else "white", fontsize=8)
    ax.set_xticks(range(n_experts), _expert_names(model, n_experts))
    ax.set_yticks(range(n_tasks), [str(name) for name in model.task_names_])
    ax.set_xlabel("expert")
    ax.set_ylabel("task")
    ax.set_title("Mean gate weight per task and expert")
    ax.figure.colorbar(image, ax=ax, label="mean gate weight")
    return ax


def plot_utilization_history(estimator, task=None, *, ax=None):
    """Each expert's mean gate weight for one task, epoch by epoch, from ``history_``.

    Parameters
    ----------
    estimator : MMoERegressorClassifier or Pipeline
        A fitted model whose gate diagnostics callback was on (the default).
    task : str or int, optional
        The task to show; the first task by default.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sk_mmoe import MMoERegressorClassifier
    >>> X = np.random.RandomState(0).normal(size=(200, 4))
    >>> model = MMoERegressorClassifier(n_experts=4, max_epochs=3, random_state=0).fit(X, X[:, :2])
    >>> from sk_mmoe.plotting import plot_utilization_history
    >>> ax = plot_utilization_history(model, task=1)
    >>> len(ax.lines), len(ax.lines[0].get_ydata())  # experts, epochs
    (4, 3)
    """
    model = _final_model(estimator)
    t = _task_index(model, task)
    records = [epoch.get("gate_utilization") for epoch in model.history_]
    if not records or any(r is None for r in records):
        raise ValueError(
            "history_ holds no gate_utilization records; fit with the default "
            "gate_utilization callback switched on."
        )
    curves = np.array(records)[:, t, :]  # (epochs, experts)
    ax = _axes(ax)
    epochs = np.arange(1, len(curves) + 1)
    names = _expert_names(model, curves.shape[1])
    for e, color in enumerate(_expert_colors(curves.shape[1])):
        ax.plot(epochs, curves[:, e], label="expert " + names[e].replace("\n", " "),
                color=color)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean gate weight")
    ax.set_ylim(0, 1)
    ax.set_title(f"Gate of task {model.task_names_[t]!r} over training")
    ax.legend(fontsize=8, ncol=2)
    return ax


def plot_gate_weight_distribution(estimator, X, task=None, *, ax=None):
    """Distribution over rows of each expert's gate weight for one task (box plots).

    A polarized gate shows one box near 1 and the others at 0; a gate that routes rows to
    different experts shows wide boxes.

    Parameters
    ----------
    estimator : MMoERegressorClassifier or Pipeline
    X : array-like of shape (n_samples, n_features)
    task : str or int, optional
        The task to show; the first task by default.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sk_mmoe import MMoERegressorClassifier
    >>> X = np.random.RandomState(0).normal(size=(200, 4))
    >>> model = MMoERegressorClassifier(n_experts=4, max_epochs=3, random_state=0).fit(X, X[:, :2])
    >>> from sk_mmoe.plotting import plot_gate_weight_distribution
    >>> ax = plot_gate_weight_distribution(model, X, task=0)
    >>> ax.get_xlabel()
    'expert'
    """
    model = _final_model(estimator)
    t = _task_index(model, task)
    weights = _gate_weights(estimator, X)[:, t, :]  # (rows, experts)
    ax = _axes(ax)
    ax.boxplot([weights[:, e] for e in range(weights.shape[1])], showfliers=False)
    ax.set_xticks(range(1, weights.shape[1] + 1), _expert_names(model, weights.shape[1]))
    ax.set_xlabel("expert")
    ax.set_ylabel("gate weight per row")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Gate weights of task {model.task_names_[t]!r} across rows")
    return ax
