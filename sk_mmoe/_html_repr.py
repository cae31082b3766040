"""The estimator's Jupyter display: the parameters a user set, our fitted attributes, and
a "?" link to the documentation."""

import sys

# Where the "?" of the HTML display points: the project's page on PyPI for the installed
# version, which shows the README with its Parameters table. scikit-learn appends a text
# fragment (#:~:text=<parameter>) to it for each parameter's link, so it has no fragment.
DOC_LINK_TEMPLATE = "https://pypi.org/project/sk-mmoe/{version}/"

# The fitted attributes our docstring documents; skorch's internals (callbacks_,
# criterion_, optimizer_, prefixes_, ...) are left out of the display.
DISPLAYED_ATTRIBUTES = (
    "tasks_", "task_names_", "task_types_", "classes_", "n_features_in_", "feature_names_in_",
    "n_iter_", "history_", "module_",
)


class HTMLReprMixin:
    """scikit-learn's HTML display, adapted to a skorch estimator."""

    _doc_link_module = "sk_mmoe"
    _doc_link_template = DOC_LINK_TEMPLATE

    def _doc_link_url_param_generator(self):
        return {"version": sys.modules["sk_mmoe"].__version__}

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
