# Databricks notebook source
# MAGIC %run ../_environment

# COMMAND ----------

from pyspark.sql import functions as F

catalog = CONFIG["catalog"]
customers = (
    spark.read.option("header", "true")
    .csv(f"/Volumes/{catalog}/landing/customers/")
    .withColumn("loaded_at", F.current_timestamp())
)
customers.write.mode("overwrite").saveAsTable(f"{catalog}.sales.customers")
