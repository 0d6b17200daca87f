-- Databricks notebook source
-- MAGIC %run ../_environment

-- COMMAND ----------

-- MAGIC %python
-- MAGIC spark.sql(f"USE CATALOG {CONFIG['catalog']}")

-- COMMAND ----------

CREATE OR REPLACE TABLE sales.daily_revenue AS
SELECT
  date(o.order_ts)      AS order_date,
  c.region              AS region,
  count(*)              AS orders,
  sum(o.amount_eur)     AS revenue_eur
FROM sales.orders o
JOIN sales.customers c USING (customer_id)
GROUP BY 1, 2
