"""Task kinds as objects: what a target column is, and how the network learns and predicts it.

Each kind owns everything that depends on it: the labels it accepts and how it encodes them
for training, its output width, its link from the network's raw outputs to predictions and
probabilities, its per-row loss, its default metric, and decoding back to the user's labels.
The rest of the package asks the task object, so that a new kind is one class in this
package (as scikit-learn's ``sklearn/_loss/loss.py`` pairs each loss with its link):
``_quantities.py`` and ``_classes.py`` hold the kinds, ``_base.py`` their base class.

``tasks=`` takes the names in :data:`TASK_KINDS` or task objects (for kinds with
parameters); a fitted model lists its fitted task objects in ``tasks_``.

Examples
--------
>>> import numpy as np
>>> import pandas as pd
>>> from sk_mmoe import MMoERegressorClassifier
>>> from sk_mmoe.tasks import Quantile
>>> rng = np.random.RandomState(0)
>>> X = rng.normal(size=(200, 3))
>>> y = pd.DataFrame({"visits": rng.poisson(np.exp(X[:, 0])), "upper": X[:, 1]})
>>> model = MMoERegressorClassifier(
...     tasks={"visits": "poisson", "upper": Quantile(0.9)}, max_epochs=3, random_state=0
... ).fit(X, y)
>>> model.tasks_
[Poisson(), Quantile(alpha=0.9)]
>>> bool((model.predict(X)["visits"] > 0).all())
True
"""

from ._base import Task, column_values_kind, plain, plain_list  # noqa: F401 (for _task_kinds)
from ._classes import Binary, Multiclass
from ._quantities import AbsoluteError, Gamma, Huber, Poisson, Quantile, Regression, Tweedie

__all__ = [
    "AbsoluteError",
    "Binary",
    "Gamma",
    "Huber",
    "Multiclass",
    "Poisson",
    "Quantile",
    "Regression",
    "TASK_KINDS",
    "Task",
    "Tweedie",
    "get_task",
]

#: The names ``tasks=`` accepts, and the class each one builds.
TASK_KINDS = {
    task.kind: task
    for task in (Regression, Binary, Multiclass, Poisson, Gamma, Tweedie, Huber, AbsoluteError, Quantile)
}


def get_task(value, where="tasks"):
    """The task object for a name in :data:`TASK_KINDS` or a :class:`Task` (returned as is)."""
    if isinstance(value, Task):
        value._check_params()
        return value
    if isinstance(value, str) and value in TASK_KINDS:
        return TASK_KINDS[value]()
    raise ValueError(
        f"{where}: {value!r} is not a task kind; allowed are the names "
        f"{sorted(TASK_KINDS)} and task objects such as Quantile(0.9) or Tweedie(power=1.5) "
        "from sk_mmoe.tasks."
    )
