"""Harnesses that tests, benchmarks and the demo need; not part of the shipped library.

- :mod:`harness.generator`: deterministic sample landing data for the e-commerce domain;
- :mod:`harness.standalone`: a local Spark standalone cluster on loopback.
"""
