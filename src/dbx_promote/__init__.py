"""dbx-promote: build Databricks notebooks once, promote the same bytes many times."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
