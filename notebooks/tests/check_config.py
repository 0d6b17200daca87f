# Databricks notebook source
# MAGIC %md
# MAGIC ## `_environment` describes the environment this run is in
# MAGIC dbx-promote runs this after every deploy to an environment whose `tests` name it. The
# MAGIC `env`, `version` and `digest` widgets come from dbx-promote; `CONFIG` comes from the
# MAGIC environment's `parameters` in `dbx-promote.yml`. Each check is one case in the JUnit
# MAGIC results (`{"cases": [...]}` as the exit value).

# COMMAND ----------

# MAGIC %run ../_environment

# COMMAND ----------

import json

dbutils.widgets.text("env", "")
dbutils.widgets.text("version", "")
run_env = dbutils.widgets.get("env")
cases = []


def case(name, ok, message=""):
    cases.append({"name": name, "status": "passed" if ok else "failed", "message": "" if ok else message})


case("ENV names the environment the run is in", ENV == run_env, f"ENV is {ENV!r}, the run is in {run_env!r}")
case("a catalog is configured", bool(CONFIG.get("catalog")), "CONFIG has no catalog")
case(
    "only prod uses the main catalog",
    (CONFIG.get("catalog") == "main") == (run_env == "prod"),
    f"{run_env} uses catalog {CONFIG.get('catalog')!r}",
)
case("alerts go to a mailbox", "@" in str(CONFIG.get("alert_email", "")), "alert_email is not an address")

# COMMAND ----------

print(f"checked CONFIG of {ENV} for release {dbutils.widgets.get('version')}")
dbutils.notebook.exit(json.dumps({"cases": cases}))
