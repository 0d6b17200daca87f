# Databricks notebook source
# MAGIC %md
# MAGIC ## Smoke test: the release can run in this environment
# MAGIC Prod runs `tests/smoke_*` after every promote; with `on_failure: rollback` a failure
# MAGIC here puts the previous release back. Keep smoke tests fast and read-only.

# COMMAND ----------

# MAGIC %run ../_environment

# COMMAND ----------

import os
import sys

sys.path.append(os.path.abspath(".."))

from lib.helpers import missing_settings  # noqa: E402

# COMMAND ----------

missing = missing_settings(CONFIG)
assert not missing, f"{ENV} lacks settings this release needs: {', '.join(missing)}"
print(f"smoke: {ENV} has every setting the release needs")
dbutils.notebook.exit("ok")
