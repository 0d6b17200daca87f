"""Shared helpers for the sales-analytics notebooks (imported as a workspace file)."""

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

EUR_RATES = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17}


def dedupe_latest(df: DataFrame, key: str, order_by: str) -> DataFrame:
    """Keep the newest row per ``key``."""
    w = Window.partitionBy(key).orderBy(F.col(order_by).desc())
    return df.withColumn("_rn", F.row_number().over(w)).filter("_rn = 1").drop("_rn")


def normalize_currency(df: DataFrame) -> DataFrame:
    """Add ``amount_eur`` from ``amount`` and ``currency``."""
    rate = F.create_map(*[F.lit(x) for kv in EUR_RATES.items() for x in kv])
    return df.withColumn("amount_eur", F.col("amount") * rate[F.col("currency")])
