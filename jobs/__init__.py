"""Medallion jobs: each module has a pure ``transform`` and a thin ``run(spark, settings, *, batch_id)``."""
