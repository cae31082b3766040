"""Where the tests look for the UCI census-income files, and the skip they give without.

The same place as the library's ``load_census_income``: ``$SK_MMOE_DATA``, else
``~/.cache/sk_mmoe``; a development checkout also finds them in ``shared/data`` beside the
repository. The tests never download.
"""

import os
from pathlib import Path

TEST_FILE = "census-income.test.gz"
_BESIDE_REPOSITORY = Path(__file__).resolve().parents[2] / "shared" / "data"


def census_data_home(environ=os.environ):
    """The first folder holding the census test file, else the one the library reads."""
    library = Path(environ.get("SK_MMOE_DATA") or Path("~", ".cache", "sk_mmoe")).expanduser()
    for folder in (library, _BESIDE_REPOSITORY):
        if (folder / TEST_FILE).is_file():
            return folder
    return library


CENSUS_HOME = census_data_home()
HAVE_CENSUS = (CENSUS_HOME / TEST_FILE).is_file()
SKIP_REASON = (
    f"the census-income file {TEST_FILE} is not in {CENSUS_HOME}: put the UCI files "
    "(census-income.test.gz, and census-income.data.gz for the full data set) in the folder "
    "named by $SK_MMOE_DATA, or in ~/.cache/sk_mmoe, e.g. with "
    "sk_mmoe.datasets.load_census_income(download_if_missing=True)"
)
