"""docker/Dockerfile: the Kubernetes job image carries the versions the artifacts are built for.

No container engine runs here, so the image is not built by the tests; this parses the
Dockerfile and holds its build arguments to what the build manifest records
(``targets``: the installed pyspark, delta-spark and Python) and to Spark's Hadoop client.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pyspark
import pytest

from lakehouse.spark.session import delta_maven_coordinate, hadoop_aws_coordinate

DOCKERFILE = Path(__file__).resolve().parents[3] / "docker" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments out."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _args() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for word, rest in _instructions():
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            found.setdefault(name, []).append(value)
    return found


def _arg(name: str) -> str:
    values = set(_args()[name])
    assert len(values) == 1, f"ARG {name} has different defaults: {sorted(values)}"
    return values.pop()


def test_versions_match_the_build_manifest_targets():
    assert _arg("SPARK_VERSION") == pyspark.__version__
    assert _arg("DELTA_VERSION") == metadata.version("delta-spark")
    assert _arg("PYTHON_VERSION") == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_hadoop_aws_matches_sparks_hadoop_client():
    # the version local runs resolve for s3a:// paths (spark.s3a.package: auto)
    image = f"org.apache.hadoop:hadoop-aws:{_arg('HADOOP_AWS_VERSION')}"
    assert image == hadoop_aws_coordinate()
    jars = Path(pyspark.__file__).parent / "jars"
    assert (jars / f"hadoop-client-api-{_arg('HADOOP_AWS_VERSION')}.jar").is_file()


def test_the_delta_package_is_the_one_local_runs_resolve():
    run = " ".join(rest for word, rest in _instructions() if word == "RUN")
    spark_mm = ".".join(_arg("SPARK_VERSION").split(".")[:2])
    built = re.search(r'packages="(io\.delta:delta-spark_[^"]+)"', run)
    assert built is not None
    rendered = built.group(1).replace("${spark_mm}", spark_mm)
    assert rendered.replace("${DELTA_VERSION}", _arg("DELTA_VERSION")) == delta_maven_coordinate()
    assert "io.delta:delta-storage-s3-dynamodb:${DELTA_VERSION}" in run
    assert "org.apache.hadoop:hadoop-aws:${HADOOP_AWS_VERSION}" in run


def test_the_image_runs_as_the_spark_user_from_the_official_base():
    instructions = _instructions()
    assert [rest for word, rest in instructions if word == "FROM"] == [
        "apache/spark:${SPARK_VERSION}-scala2.13-java17-ubuntu"
    ]
    users = [rest for word, rest in instructions if word == "USER"]
    assert users[-1] == "spark", users  # the official image's non-root user (uid 185)


@pytest.mark.parametrize("name", ["SPARK_VERSION", "DELTA_VERSION", "HADOOP_AWS_VERSION"])
def test_a_version_is_a_plain_release_number(name):
    assert re.fullmatch(r"\d+\.\d+\.\d+", _arg(name)), _arg(name)
