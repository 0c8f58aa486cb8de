"""Helpers the evaluators, the report and the plots share."""

from aebench.evaluate.stats import binomial_ci, seed_summary, t_interval

__all__ = ["binomial_ci", "seed_summary", "t_interval"]
