# Databricks notebook source
# MAGIC %run ../_environment

# COMMAND ----------

library(SparkR)

revenue <- sql("SELECT region, order_date, revenue_eur FROM sales.daily_revenue")
trend <- summarize(groupBy(revenue, revenue$region), avg_daily_eur = avg(revenue$revenue_eur))
display(arrange(trend, desc(trend$avg_daily_eur)))
