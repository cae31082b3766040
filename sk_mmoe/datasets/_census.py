"""Loader for the UCI Census-Income (KDD) data, with the MMoE paper's two task groups."""

import gzip
import io
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from .._warnings import warn

ARCHIVE_URL = "https://archive.ics.uci.edu/static/public/117/census+income+kdd.zip"
# The zip holds census.tar.gz, which holds the two files, uncompressed.
_INNER_ARCHIVE = "census.tar.gz"
_DOWNLOAD_TIMEOUT_S = 60
# Module-level so that tests can serve a local archive without the network.
_urlopen = urllib.request.urlopen

_FILES = {"train": "census-income.data", "test": "census-income.test"}
_N_ROWS = {"train": 199_523, "test": 99_762}

# The order of the fields in the files; names from census-income.names.
_COLUMNS = [
    "age",
    "class_of_worker",
    "detailed_industry_recode",
    "detailed_occupation_recode",
    "education",
    "wage_per_hour",
    "enroll_in_edu_inst_last_wk",
    "marital_stat",
    "major_industry_code",
    "major_occupation_code",
    "race",
    "hispanic_origin",
    "sex",
    "member_of_a_labor_union",
    "reason_for_unemployment",
    "full_or_part_time_employment_stat",
    "capital_gains",
    "capital_losses",
    "dividends_from_stocks",
    "tax_filer_stat",
    "region_of_previous_residence",
    "state_of_previous_residence",
    "detailed_household_and_family_stat",
    "detailed_household_summary_in_household",
    "instance_weight",
    "migration_code_change_in_msa",
    "migration_code_change_in_reg",
    "migration_code_move_within_reg",
    "live_in_this_house_1_year_ago",
    "migration_prev_res_in_sunbelt",
    "num_persons_worked_for_employer",
    "family_members_under_18",
    "country_of_birth_father",
    "country_of_birth_mother",
    "country_of_birth_self",
    "citizenship",
    "own_business_or_self_employed",
    "fill_inc_questionnaire_for_veterans_admin",
    "veterans_benefits",
    "weeks_worked_in_year",
    "year",
    "income",
]
_NUMERIC = {
    "age": "int64",
    "wage_per_hour": "int64",
    "capital_gains": "int64",
    "capital_losses": "int64",
    "dividends_from_stocks": "int64",
    "instance_weight": "float64",
    "num_persons_worked_for_employer": "int64",
    "weeks_worked_in_year": "int64",
}
# Integer codes that census-income.names lists as nominal: categories, not counts.
_CODED = [
    "detailed_industry_recode",
    "detailed_occupation_recode",
    "own_business_or_self_employed",
    "veterans_benefits",
    "year",
]
_READ_DTYPES = {
    column: _NUMERIC.get(column, "int64" if column in _CODED else "category")
    for column in _COLUMNS
}
_LABELS = {"- 50000.", "50000+."}

_COLLEGE_DEGREES = {
    "Associates degree-occup /vocational",
    "Associates degree-academic program",
    "Bachelors degree(BA AB BS)",
    "Masters degree(MA MS MEng MEd MSW MBA)",
    "Prof school degree (MD DDS DVM LLB JD)",
    "Doctorate degree(PhD EdD)",
}
# Each target is True where its source column takes one of the values.
_TARGET_RULES = {
    "income_50k": ("income", {"50000+."}),
    "never_married": ("marital_stat", {"Never married"}),
    "college_degree": ("education", _COLLEGE_DEGREES),
}
_GROUPS = {1: ["income_50k", "never_married"], 2: ["college_degree", "never_married"]}

DESCR_TEMPLATE = """\
Census-Income (KDD) data set
----------------------------

Weighted records of the 1994 and 1995 Current Population Surveys of the U.S.
Census Bureau, from the UCI Machine Learning Repository
(https://archive.ics.uci.edu/dataset/117/census+income+kdd, CC BY 4.0).

Rows: {n_rows:,}, from {files} (in that order; see `split`).
Targets: task group {group} of Ma et al., KDD 2018, Section 6.2: {targets}.
Features: {n_features} columns, {n_categorical} of them categorical.

The income label, the columns the targets come from and the instance weight
are not features. The instance weight, the number of people a record stands
for, is in `sample_weight`. See the docstring of load_census_income for the
target rules and the column types.
"""


class Bunch(dict):
    """A dict whose keys are also attributes, like ``sklearn.utils.Bunch``."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def __dir__(self):
        return list(self.keys())


def load_census_income(
    *,
    data_home=None,
    group=1,
    download_if_missing=True,
    return_X_y=False,
    as_frame=True,
):
    """Load the UCI Census-Income (KDD) data as the MMoE paper's two-task problems.

    The data are the files ``census-income.data.gz`` (199,523 rows, the
    training file) and ``census-income.test.gz`` (99,762 rows, the test file)
    of the UCI repository. Where both are in ``data_home`` they are stacked,
    training rows first, and ``split`` says which file each row came from: the
    paper trained on the training file and split the test file 1:1 into
    validation and test sets. Where only one is there, its rows are returned
    with a ``UserWarning`` that says so.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder that holds the files, gzipped or not. By default the folder
        named by the ``SK_MMOE_DATA`` environment variable, else
        ``~/.cache/sk_mmoe``.
    group : {1, 2}, default=1
        The paper's task group. 1: ``income_50k`` and ``never_married``.
        2: ``college_degree`` and ``never_married``. See Notes for the rules.
    download_if_missing : bool, default=True
        If a file is missing, download both from :data:`ARCHIVE_URL` into
        ``data_home``, saved as ``census-income.data.gz`` and
        ``census-income.test.gz``. If False, or if the download fails, a
        missing file is an error, unless the other file is there (then a
        warning).
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=True
        If True, ``data`` and ``target`` are DataFrames, ``sample_weight`` and
        ``split`` Series. If False, they are ndarrays; ``data`` is then of
        object dtype, as its columns mix numbers and strings.

    Returns
    -------
    bunch : Bunch
        Dict with attribute access:

        data : DataFrame of shape (n_samples, n_features)
            The features: numeric columns as int64, the others as pandas
            ``category``, so ``make_column_selector(dtype_include="category")``
            picks them out.
        target : DataFrame of shape (n_samples, 2)
            The group's two targets, bool.
        frame : DataFrame of shape (n_samples, n_features + 2)
            ``data`` and ``target`` side by side; None if ``as_frame`` is
            False.
        sample_weight : Series of shape (n_samples,)
            The instance weight (float64): how many people a record stands
            for. Not a feature.
        split : Series of shape (n_samples,)
            ``"train"`` or ``"test"``: the file each row came from.
        feature_names : list of str
        target_names : list of str
        DESCR : str
            Description of the data set.

    (data, target) : tuple
        If ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        If neither file is in ``data_home`` and downloading is disabled or
        fails.
    ValueError
        If ``group`` is not 1 or 2, or a file's income label column holds
        values other than ``- 50000.`` and ``50000+.``.

    Warns
    -----
    UserWarning
        If only one of the two files is available.

    Notes
    -----
    Targets, following Section 6.2 of the paper:

    - ``income_50k``: the income label is ``50000+.``.
    - ``never_married``: ``marital_stat`` is ``"Never married"``.
    - ``college_degree``: ``education`` is a college degree, from an associate
      degree up: ``Associates degree-occup /vocational``, ``Associates
      degree-academic program``, ``Bachelors degree(BA AB BS)``, ``Masters
      degree(MA MS MEng MEd MSW MBA)``, ``Prof school degree (MD DDS DVM LLB
      JD)`` or ``Doctorate degree(PhD EdD)``; ``Some college but no degree``
      does not count. With this rule the absolute Pearson correlation of the
      group 2 targets on the test file is 0.238, against 0.2373 in the
      paper's Table 1 (0.196 without associate degrees, 0.281 with ``Some
      college but no degree``).

    Features: the 40 attributes of ``census-income.names`` less the columns
    the group's targets come from (``marital_stat`` in both groups, and
    ``education`` in group 2) and less the instance weight; the income label
    is never a feature. ``frame`` has the same columns as ``data`` plus the
    targets.

    Types: ``age``, ``wage_per_hour``, ``capital_gains``, ``capital_losses``,
    ``dividends_from_stocks``, ``num_persons_worked_for_employer`` and
    ``weeks_worked_in_year`` are int64. All other features are categories,
    including the integer codes ``detailed_industry_recode``,
    ``detailed_occupation_recode``, ``own_business_or_self_employed``,
    ``veterans_benefits`` and ``year`` (their categories are ints). The
    values ``"?"``, ``"Not in universe"`` and ``"NA"`` (in ``hispanic_origin``)
    are categories of their own, not missing values: the data has no missing
    values. Spaces around string values are stripped. The categories are
    those present in the rows loaded, so they can differ between the test
    file alone and both files.

    Download: the UCI zip at :data:`ARCHIVE_URL` holds ``census.tar.gz``, which
    holds ``census-income.data`` and ``census-income.test``; the missing ones
    are gzipped into ``data_home`` through a temporary file, so an interrupted
    download leaves no partial file behind.

    Examples
    --------
    >>> from sk_mmoe.datasets import load_census_income
    >>> census = load_census_income(group=1)  # doctest: +SKIP
    >>> census.target.mean().round(2)  # doctest: +SKIP
    income_50k       0.06
    never_married    0.43
    dtype: float64
    """
    if isinstance(group, bool) or group not in _GROUPS:
        raise ValueError(f"group must be 1 or 2, got {group!r}.")
    folder = _data_home(data_home)
    paths = _locate_files(folder, download_if_missing)
    frame, split = _read_files(paths)

    target_names = _GROUPS[group]
    target = _targets(frame, target_names)
    feature_names = _feature_names(target_names)
    data = frame[feature_names]
    sample_weight = frame["instance_weight"]

    if not as_frame:
        data, target = data.to_numpy(dtype=object), target.to_numpy()
        sample_weight, split = sample_weight.to_numpy(), split.to_numpy(dtype=object)
    if return_X_y:
        return data, target
    descr = DESCR_TEMPLATE.format(
        n_rows=len(frame),
        files=" and ".join(path.name for path in paths.values()),
        group=group,
        targets=", ".join(target_names),
        n_features=len(feature_names),
        n_categorical=sum(column not in _NUMERIC for column in feature_names),
    )
    return Bunch(
        data=data,
        target=target,
        frame=pd.concat([data, target], axis=1) if as_frame else None,
        sample_weight=sample_weight,
        split=split,
        feature_names=feature_names,
        target_names=list(target_names),
        DESCR=descr,
    )


def _targets(frame, target_names):
    """One bool column per target, by the rules of _TARGET_RULES."""
    columns = {}
    for name in target_names:
        source, values = _TARGET_RULES[name]
        columns[name] = frame[source].isin(values)
    return pd.DataFrame(columns)


def _feature_names(target_names):
    """All columns but the label, the instance weight and the targets' sources."""
    sources = {_TARGET_RULES[name][0] for name in target_names}
    return [c for c in _COLUMNS if c not in {"income", "instance_weight"} | sources]


def _data_home(data_home):
    """The folder to read from: the argument, else $SK_MMOE_DATA, else the cache."""
    if data_home is None:
        data_home = os.environ.get("SK_MMOE_DATA") or Path("~", ".cache", "sk_mmoe")
    return Path(data_home).expanduser()


def _find_files(folder):
    """Map "train" / "test" to the file found for it, gzipped ones first."""
    found = {}
    for split, name in _FILES.items():
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                found[split] = candidate
                break
    return found


def _locate_files(folder, download_if_missing):
    """The files to read, downloading missing ones if allowed."""
    found = _find_files(folder)
    error = None
    if download_if_missing and len(found) < len(_FILES):
        try:
            _download(folder, [_FILES[split] for split in _FILES if split not in found])
        except OSError as exc:
            error = exc
        found = _find_files(folder)
    if not found:
        message = _not_found_message(folder, download_if_missing, error)
        raise FileNotFoundError(message) from error
    if len(found) < len(_FILES):
        message = _partial_message(folder, found, download_if_missing, error)
        warn(message, UserWarning)
    return {split: found[split] for split in _FILES if split in found}


def _not_found_message(folder, download_if_missing, error):
    looked_for = " and ".join(f"{name}.gz (or {name})" for name in _FILES.values())
    if download_if_missing:
        reason = f"Downloading them from {ARCHIVE_URL} failed: {error}."
    else:
        reason = f"Pass download_if_missing=True to download them from {ARCHIVE_URL}."
    return (
        f"No Census-Income (KDD) data in {folder}: looked for {looked_for}. {reason} "
        f"Or download that zip yourself and put the files of the {_INNER_ARCHIVE} inside "
        "it into this folder, or point data_home or the SK_MMOE_DATA environment "
        "variable at a folder that holds them."
    )


def _partial_message(folder, found, download_if_missing, error):
    (split,) = found
    (missing,) = set(_FILES) - set(found)
    message = (
        f"Only the {_N_ROWS[split]:,}-row {split} file {found[split].name} was found in "
        f"{folder}; the {_N_ROWS[missing]:,}-row {missing} file {_FILES[missing]}.gz is "
        "missing. The MMoE paper trained on the train file and split the test file 1:1 "
        f"into validation and test sets. Returning the {split} rows only."
    )
    if error is not None:
        return f"{message} Downloading the {missing} file failed: {error}."
    if not download_if_missing:
        return f"{message} Pass download_if_missing=True to download it from {ARCHIVE_URL}."
    return message


def _download(folder, names):
    """Fetch the archive and write the named files into folder, gzipped."""
    with _urlopen(ARCHIVE_URL, timeout=_DOWNLOAD_TIMEOUT_S) as response:
        payload = io.BytesIO(response.read())
    written = set()
    try:
        with zipfile.ZipFile(payload) as archive, archive.open(_INNER_ARCHIVE) as inner:
            with tarfile.open(fileobj=inner, mode="r|gz") as tar:
                for member in tar:
                    name = PurePosixPath(member.name).name
                    if member.isfile() and name in names:
                        _write_gzip(tar.extractfile(member), folder / f"{name}.gz")
                        written.add(name)
    except (zipfile.BadZipFile, tarfile.TarError, KeyError) as exc:
        raise OSError(f"{ARCHIVE_URL} is not the expected archive: {exc}") from exc
    missing = sorted(set(names) - written)
    if missing:
        raise OSError(f"{ARCHIVE_URL} has no {', '.join(missing)} in its {_INNER_ARCHIVE}.")


def _write_gzip(source, target):
    """Gzip source into target through a temporary file, so target is whole or absent."""
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(descriptor, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw) as out:
                shutil.copyfileobj(source, out)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise


def _read_files(paths):
    """Stack the files in order; return the frame and each row's split."""
    frames = [_read_file(path) for path in paths.values()]
    frame = pd.concat(frames, ignore_index=True)
    # Concatenating categoricals with different categories gives strings.
    categorical = [column for column in _COLUMNS if column not in _NUMERIC]
    frame[categorical] = frame[categorical].astype("category")
    split = pd.Series(
        pd.Categorical(np.repeat(list(paths), [len(f) for f in frames]), categories=list(_FILES)),
        name="split",
    )
    return frame, split


def _read_file(path):
    """Parse one UCI file into typed columns."""
    frame = pd.read_csv(
        path,
        header=None,
        names=_COLUMNS,
        dtype=_READ_DTYPES,
        skipinitialspace=True,
        # "?", "NA" and "Not in universe" are answers in this data, not gaps.
        na_filter=False,
    )
    for column in _CODED:
        frame[column] = frame[column].astype("category")
    for column, dtype in _READ_DTYPES.items():
        if dtype == "category":
            # Some values end in a space, e.g. "Foreign born- Not a citizen of U S ".
            frame[column] = frame[column].cat.rename_categories(str.strip)
    labels = set(frame["income"].cat.categories)
    if not labels <= _LABELS:
        raise ValueError(
            f"column 'income' of {path} must hold only {sorted(_LABELS)}, got "
            f"{sorted(labels - _LABELS)[:5]}; is it a Census-Income (KDD) file?"
        )
    return frame
