"""scikit-learn metadata routing for the estimator and the task scorers.

With ``sklearn.set_config(enable_metadata_routing=True)``, ``Pipeline``, ``GridSearchCV``
and ``cross_validate`` pass ``sample_weight`` (or any other metadata) only to the objects
that request it: ``model.set_fit_request(sample_weight=True)``,
``make_task_scorer(...).set_score_request(sample_weight=True)``. Without routing, nothing
here changes behaviour.
"""

import inspect

from sklearn import get_config
from sklearn.utils._metadata_requests import _MetadataRequester
from sklearn.utils.metadata_routing import MetadataRequest, get_routing_for_object


class PartialFitRequestMixin:
    """Metadata requests of ``partial_fit`` read off its signature.

    skorch's ``NeuralNet`` declares ``__metadata_request__partial_fit = {"classes": UNUSED}``
    to drop its own ``classes`` argument; our ``partial_fit`` has no such argument, and
    scikit-learn refuses to drop one that does not exist, which broke every
    ``set_*_request`` and ``get_metadata_routing`` call. Every other method keeps
    scikit-learn's rule.
    """

    @classmethod
    def _get_class_level_metadata_request_values(cls, method_name, *args, **kwargs):
        if method_name != "partial_fit":
            return super()._get_class_level_metadata_request_values(
                method_name, *args, **kwargs
            )
        parameters = inspect.signature(cls.partial_fit).parameters
        return {
            name: None
            for name, parameter in parameters.items()
            if name not in ("self", "X", "y")
            and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        }


class ScoreRequestMixin(_MetadataRequester):
    """``set_score_request`` for a scorer called as ``scorer(estimator, X, y, sample_weight)``,
    as scikit-learn's own scorers have it: ``sample_weight`` is requested only when asked."""

    def set_score_request(self, *, sample_weight=None):
        """Request ``sample_weight`` for this scorer when metadata routing is enabled.

        Parameters
        ----------
        sample_weight : bool, str or None, default=None
            True: the scorer receives ``sample_weight``; False: it does not; a str: it
            receives the metadata of that name as ``sample_weight``; None: passing
            ``sample_weight`` raises an error.

        Returns
        -------
        self
        """
        if not get_config()["enable_metadata_routing"]:
            raise RuntimeError(
                "set_score_request is only available when metadata routing is enabled: "
                "sklearn.set_config(enable_metadata_routing=True)."
            )
        request = MetadataRequest(owner=self)
        request.score.add_request(param="sample_weight", alias=sample_weight)
        self._metadata_request = request
        return self

    def _get_metadata_request(self):
        if hasattr(self, "_metadata_request"):
            return get_routing_for_object(self._metadata_request)
        request = MetadataRequest(owner=self)
        request.score.add_request(param="sample_weight", alias=None)
        return request
