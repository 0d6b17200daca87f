# Databricks notebook source
# MAGIC %run ../_environment

# COMMAND ----------

import os
import sys

# Workspace files are importable once the project root is on the path.
sys.path.append(os.path.abspath(".."))

from lib.helpers import dedupe_latest, normalize_currency  # noqa: E402

# COMMAND ----------

catalog = CONFIG["catalog"]
raw = spark.table(f"{catalog}.sales.orders_raw")
clean = normalize_currency(dedupe_latest(raw, key="order_id", order_by="order_ts"))
clean.write.mode("overwrite").saveAsTable(f"{catalog}.sales.orders")
