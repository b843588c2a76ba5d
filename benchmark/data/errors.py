"""The error every data module raises for a dataset that is unknown, misconfigured or cannot be served."""

from __future__ import annotations


class DatasetConfigError(ValueError):
    r"""A dataset is unknown, misconfigured, or no repository can serve it."""
