"""Data frames other than pandas (polars, pyarrow Tables) read as the pandas frame with the
same columns, through narwhals (which scikit-learn itself depends on).

The encoders in ``_features.py`` and ``_tasks.py`` read pandas; converting at their entry
makes a polars ``X`` or ``y`` fit and predict exactly as the same pandas data does, without
importing polars or pyarrow here. The conversion builds new arrays: the caller's frame is
never modified.
"""

import narwhals as nw
import numpy as np
import pandas as pd
from narwhals.dependencies import (
    is_polars_dataframe,
    is_polars_lazyframe,
    is_polars_series,
    is_pyarrow_chunked_array,
    is_pyarrow_table,
)


def as_pandas(data, name):
    """``data`` as a pandas DataFrame (or Series) when it is a polars or pyarrow frame (or
    series); anything else is returned as it is.

    Categorical and Enum columns become pandas categories, strings object columns with None
    for null, numbers float or int columns with NaN for null, booleans bool columns (object
    with None when they hold a null): the dtypes that pandas frames built from the same
    values have, which the encoders read.

    Parameters
    ----------
    data : object
    name : str
        The argument's name (``"X"``, ``"y"``), for error messages.
    """
    if is_polars_lazyframe(data):
        raise TypeError(
            f"{name} is a polars LazyFrame; call .collect() on it first, so that its rows "
            "are computed, and pass the DataFrame."
        )
    if is_polars_dataframe(data) or is_pyarrow_table(data):
        frame = nw.from_native(data, eager_only=True)
        columns = {column: _column_values(frame[column]) for column in frame.columns}
        return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))
    if is_polars_series(data) or is_pyarrow_chunked_array(data):
        series = nw.from_native(data, series_only=True)
        return pd.Series(_column_values(series), name=series.name or None)
    return data


def _column_values(series):
    dtype = series.dtype
    if dtype in (nw.Categorical, nw.Enum):
        return pd.Categorical(series.to_numpy())
    if dtype == nw.String:
        return series.to_numpy().astype(object)
    if dtype == nw.Boolean and series.null_count() > 0:
        # numpy has no nullable bool; pandas keeps such a column as objects with None.
        return np.asarray(series.to_list(), dtype=object)
    return series.to_numpy()


PREDICT_OUTPUTS = ("default", "pandas", "polars")


class PredictOutputMixin:
    """``set_output``: the container ``predict`` returns, as scikit-learn's transformers
    choose theirs. Stored where scikit-learn stores it, so ``clone`` keeps it."""

    def set_output(self, *, transform=None):
        """Choose the container of :meth:`predict`'s result.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            ``"default"``: shaped like ``y`` at fit (see :meth:`predict`); ``"pandas"``: a
            pandas DataFrame with one column per task; ``"polars"``: a polars DataFrame
            with one column per task, named by ``str(task)`` (polars must be installed);
            None leaves the choice unchanged. The name is scikit-learn's; here it sets
            what ``predict`` returns.

        Returns
        -------
        self
        """
        if transform is None:
            return self
        if transform not in PREDICT_OUTPUTS:
            raise ValueError(
                f"set_output(transform={transform!r}): allowed values are "
                f"{list(PREDICT_OUTPUTS)} or None."
            )
        if transform == "polars":
            try:
                import polars  # noqa: F401
            except ImportError as exc:
                raise ImportError(
                    "set_output(transform='polars') needs polars: pip install polars."
                ) from exc
        self._sklearn_output_config = {"transform": transform}
        return self

    def _predict_container(self, y_pred, columns, index):
        """``y_pred`` (shaped like ``y`` at fit) in the container chosen by set_output."""
        chosen = getattr(self, "_sklearn_output_config", {}).get("transform", "default")
        if chosen == "default":
            return y_pred
        frame = y_pred
        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(dict(zip(self.task_names_, columns)), index=index)
        if chosen == "pandas":
            return frame
        data = {str(task): frame[task].to_list() for task in self.task_names_}
        return nw.from_dict(data, backend="polars").to_native()
