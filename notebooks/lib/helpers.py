"""Shared helpers for the sales-analytics notebooks (imported as a workspace file).

Spark is imported inside the functions that need it, so the plain helpers (and the test
notebooks that check them) also work where there is no Spark session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

EUR_RATES = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17}

# Settings every environment's `parameters` must give this release (read from CONFIG).
REQUIRED_SETTINGS = ("catalog", "alert_email")


def eur_amount(amount: float, currency: str) -> float:
    """``amount`` in ``currency`` as EUR, to the cent; ValueError for an unknown currency."""
    try:
        rate = EUR_RATES[currency.upper()]
    except KeyError:
        raise ValueError(f"no EUR rate for currency {currency!r}") from None
    return round(amount * rate, 2)


def missing_settings(config: dict) -> list[str]:
    """The required settings that ``config`` (an environment's CONFIG) lacks or leaves empty."""
    return [key for key in REQUIRED_SETTINGS if not str(config.get(key) or "").strip()]


def dedupe_latest(df: DataFrame, key: str, order_by: str) -> DataFrame:
    """Keep the newest row per ``key``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy(key).orderBy(F.col(order_by).desc())
    return df.withColumn("_rn", F.row_number().over(w)).filter("_rn = 1").drop("_rn")


def normalize_currency(df: DataFrame) -> DataFrame:
    """Add ``amount_eur`` from ``amount`` and ``currency``."""
    from pyspark.sql import functions as F

    rate = F.create_map(*[F.lit(x) for kv in EUR_RATES.items() for x in kv])
    return df.withColumn("amount_eur", F.col("amount") * rate[F.col("currency")])
