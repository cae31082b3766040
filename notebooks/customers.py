"""A small made-up customer table with three targets of three kinds, for the notebooks.

``make_customers`` returns ``X`` (numeric and string columns) and ``y`` with
``lifetime_value`` (regression), ``churned`` (binary) and ``segment`` (three classes), some
labels missing. The targets share some of their causes, so the tasks are related.
"""

import numpy as np
import pandas as pd


def make_customers(n_samples=3000, missing=0.15, random_state=0):
    """``X, y`` as DataFrames; ``missing`` is the share of each target's labels set to None."""
    rng = np.random.default_rng(random_state)
    age = rng.integers(18, 80, n_samples)
    tenure = rng.exponential(3.0, n_samples).round(1)
    spend = rng.lognormal(4.0, 0.6, n_samples).round(2)
    plan = rng.choice(["basic", "plus", "pro"], n_samples, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south", "east", "west"], n_samples)
    X = pd.DataFrame(
        {"age": age, "tenure_years": tenure, "monthly_spend": spend, "plan": plan, "region": region}
    )
    plan_level = pd.Series(plan).map({"basic": 0.0, "plus": 1.0, "pro": 2.0}).to_numpy()
    engagement = (
        0.8 * np.log(spend) + 0.3 * np.sqrt(tenure) + 0.4 * plan_level
        - 0.01 * (age - 45) ** 2 / 10 + rng.normal(0, 0.5, n_samples)
    )
    lifetime_value = (spend * (1 + tenure) * np.exp(0.2 * engagement) / 10).round(2)
    churn_logit = -1.5 * (engagement - engagement.mean()) - 0.3 * tenure + 0.5 * (region == "south")
    churned = rng.random(n_samples) < 1 / (1 + np.exp(-churn_logit))
    segment_score = engagement + 0.02 * (age - 45)
    segment = np.where(
        segment_score > np.quantile(segment_score, 0.7), "premium",
        np.where(segment_score > np.quantile(segment_score, 0.3), "regular", "occasional"),
    )
    y = pd.DataFrame(
        {
            "lifetime_value": lifetime_value,
            "churned": pd.Series(churned, dtype="boolean"),  # nullable bool: NA is missing
            "segment": pd.Series(segment, dtype=object),
        }
    )
    for column in y.columns:
        y.loc[rng.random(n_samples) < missing, column] = None
    return X, y
