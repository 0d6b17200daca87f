# Databricks notebook source
# MAGIC %md
# MAGIC # Load orders
# MAGIC Reads the day's raw order files from the landing zone into `<catalog>.sales.orders_raw`.

# COMMAND ----------

# MAGIC %run ../_environment

# COMMAND ----------

dbutils.widgets.text("run_date", "")
run_date = dbutils.widgets.get("run_date") or spark.sql("SELECT current_date()").first()[0]
catalog = CONFIG["catalog"]
print(f"[{ENV}] loading orders for {run_date} into {catalog}")

# COMMAND ----------

orders = (
    spark.read.format("json")
    .load(f"/Volumes/{catalog}/landing/orders/{run_date}/")
    .withColumnRenamed("ts", "order_ts")
)
orders.write.mode("append").saveAsTable(f"{catalog}.sales.orders_raw")
