// Databricks notebook source
// MAGIC %run ../_environment

// COMMAND ----------

import org.apache.spark.sql.functions._

val catalog = spark.conf.get("sales.catalog", "main")
val spend = spark.table(s"$catalog.sales.orders")
  .groupBy("customer_id")
  .agg(sum("amount_eur").as("total_eur"), count("*").as("orders"))

// COMMAND ----------

val segments = spend.withColumn(
  "segment",
  when(col("total_eur") >= 10000, "key").when(col("total_eur") >= 1000, "regular").otherwise("occasional")
)
segments.write.mode("overwrite").saveAsTable(s"$catalog.sales.customer_segments")
