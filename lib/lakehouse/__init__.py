"""Lakehouse job suite: shared library for PySpark + Delta Lake medallion jobs."""

__version__ = "0.1.0"
