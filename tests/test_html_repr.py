"""The Jupyter display: user-set parameters only, a documentation link, our attributes."""

import re

import numpy as np

from sk_mmoe import MMoERegressorClassifier


def parameter_rows(html):
    """(row class, parameter name) for each row of the parameters table."""
    rows = re.findall(r'<tr class="(user-set|default)">.*?<td class="param">(.*?)</td>', html, re.S)
    return [(kind, re.sub(r"<[^>]+>", " ", cell).split()[0]) for kind, cell in rows]


def test_unfitted_default_model_highlights_nothing_and_lists_no_callback_internals():
    rows = parameter_rows(MMoERegressorClassifier()._repr_html_())
    assert rows and all(kind == "default" for kind, _ in rows)
    names = [name for _, name in rows]
    assert not any(name.startswith("callbacks__") for name in names)
    assert names[:2] == ["tasks", "n_experts"]


def test_user_set_parameters_come_first_and_only_they_are_highlighted():
    model = MMoERegressorClassifier(n_experts=4, optimizer__weight_decay=0.1)
    rows = parameter_rows(model._repr_html_())
    user_set = [name for kind, name in rows if kind == "user-set"]
    assert user_set == ["n_experts", "optimizer__weight_decay"]
    assert [name for _, name in rows[:2]] == user_set


def test_no_link_to_documentation_that_does_not_exist():
    # There is no published documentation page: neither the "?" of the estimator box
    # nor the parameter names link anywhere (scikit-learn's own links are left alone).
    html = MMoERegressorClassifier()._repr_html_()
    assert "pypi.org" not in html and "sk-mmoe" not in html.lower().replace("sk_mmoe", "")
    assert not re.search(r'href="[^"]*#:~:text=n_experts', html)
    assert "n_experts" in html


def test_fitted_attributes_are_ours_not_skorch_internals():
    X = np.random.RandomState(0).normal(size=(40, 3))
    model = MMoERegressorClassifier(n_experts=2, max_epochs=1, random_state=0).fit(X, X[:, :2])
    html = model._repr_html_()
    shown = set(re.findall(r"<td class=\"param\">\s*(?:<a[^>]*>\s*)?(\w+_)[\s<]", html))
    assert {"tasks_", "task_names_", "task_types_", "classes_", "n_iter_", "history_", "module_"} <= shown
    assert not shown & {"callbacks_", "criterion_", "optimizer_", "prefixes_", "initialized_"}


def test_fitted_display_shows_each_tasks_kind():
    X = np.random.RandomState(0).normal(size=(40, 3))
    model = MMoERegressorClassifier(n_experts=2, max_epochs=1, random_state=0,
                                    tasks=["poisson", "regression"]).fit(X, np.abs(X[:, :2]))
    assert "<td>[Poisson(), Regression()]</td>" in model._repr_html_()
