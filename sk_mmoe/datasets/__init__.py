"""Data sets of the MMoE paper: the synthetic generator and the census-income loader.

This package depends on numpy, pandas and the standard library only, so that
data can be made or loaded without the estimator's dependencies.
"""

from ._census import load_census_income
from ._synthetic import make_multitask_regression

__all__ = ["load_census_income", "make_multitask_regression"]
