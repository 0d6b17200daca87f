# Databricks notebook source
# MAGIC %md
# MAGIC ## The shared helpers in `lib/helpers.py` do what the notebooks rely on
# MAGIC A plain notebook test: an uncaught `AssertionError` fails the run, and its message is
# MAGIC what `dbx-promote test` and the JUnit results show.

# COMMAND ----------

import os
import sys

# Workspace files are importable once the project root is on the path.
sys.path.append(os.path.abspath(".."))

from lib.helpers import REQUIRED_SETTINGS, eur_amount, missing_settings  # noqa: E402

# COMMAND ----------

assert eur_amount(100, "EUR") == 100.0, eur_amount(100, "EUR")
assert eur_amount(100, "usd") == 92.0, f"100 USD should be 92.0 EUR, got {eur_amount(100, 'usd')}"
assert eur_amount(10, "GBP") == 11.7, f"10 GBP should be 11.7 EUR, got {eur_amount(10, 'GBP')}"
try:
    eur_amount(1, "XXX")
except ValueError:
    pass
else:
    raise AssertionError("an unknown currency must be refused")

# COMMAND ----------

assert missing_settings({key: "set" for key in REQUIRED_SETTINGS}) == []
assert missing_settings({"catalog": " "}) == list(REQUIRED_SETTINGS)
print("helpers: all checks passed")
