"""The estimator's Jupyter display: the parameters a user set and our fitted attributes.

No documentation link: sk-mmoe has no published documentation page yet (the PyPI page the
"?" and parameter names used to link to does not exist), and a link must lead somewhere.
The docstrings (``help(MMoERegressorClassifier)``) and the README are the documentation.
"""

# The fitted attributes our docstring documents; skorch's internals (callbacks_,
# criterion_, optimizer_, prefixes_, ...) are left out of the display.
DISPLAYED_ATTRIBUTES = (
    "tasks_", "task_names_", "task_types_", "classes_", "n_features_in_", "feature_names_in_",
    "n_iter_", "history_", "module_",
)


class HTMLReprMixin:
    """scikit-learn's HTML display, adapted to a skorch estimator."""

    def _get_doc_link(self):
        return ""

    def _get_params_html(self, deep=True, doc_link=""):
        # skorch's deep parameters expand every default callback into callbacks__* rows,
        # all shown as "changed"; the constructor's parameters and the routed ones the
        # user passed are what a reader set.
        return super()._get_params_html(deep=False, doc_link=doc_link)

    def _get_fitted_attr_html(self, doc_link=""):
        attributes = super()._get_fitted_attr_html(doc_link=doc_link)
        for name in list(attributes):
            if name not in DISPLAYED_ATTRIBUTES:
                del attributes[name]
        return attributes
