"""Drill 7: secrets passed through environment variables never leak.

Pass criterion: a secret given as ``${DRILL_SECRET}`` in configuration (a Spark conf whose
key matches ``spark.redaction.regex``) does not appear verbatim in (a) Spark's own
redaction of the session conf (what the UI environment page and event log show), (b) a
run report's JSON, (c) a printed spark-submit-style command, (d) the Spark UI REST
environment page of a real application (slow part, subprocess with UI on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.config import load_config
from lakehouse.pipeline.report import JobResult, RunReport
from lakehouse.redaction import REDACTED, find_leaks, redact_argv, redact_mapping
from lakehouse.spark.session import REDACTION_REGEX, spark_conf_for

SECRET = "s3cr3t-DRILL7-value"
KEY = "spark.hadoop.fs.s3a.secret.key"


def _settings():
    return load_config(
        "local",
        environ={"DRILL_SECRET": SECRET},
        overrides={"spark": {"conf": {KEY: "${DRILL_SECRET}"}}},
    )


def test_secret_is_redacted_by_spark_and_the_suite(spark: SparkSession) -> None:
    settings = _settings()
    conf = spark_conf_for(settings)
    assert conf[KEY] == SECRET  # the value reaches Spark...
    assert conf["spark.redaction.regex"] == REDACTION_REGEX
    # (a) ...and Spark's own redaction (used by the UI environment page and event log) hides it
    jconf = spark._jvm.org.apache.spark.SparkConf(False)
    jconf.set("spark.redaction.regex", REDACTION_REGEX)
    jl = spark._jvm.java.util.ArrayList()
    for k, v in conf.items():
        jl.add(spark._jvm.scala.Tuple2(k, v))
    pairs = spark._jvm.scala.collection.JavaConverters.asScalaBuffer(jl).toList()
    redacted = spark._jvm.org.apache.spark.util.Utils.redact(jconf, pairs)
    shown = str(redacted.mkString("|"))
    assert find_leaks(shown, [SECRET]) == []
    assert f"({KEY},{REDACTED})" in shown
    # (b) run report with the settings attached
    report = RunReport(
        run_id="r1", env="local", started_at="now", jobs=[JobResult("bronze_ingest")]
    )
    report.settings = redact_mapping(settings.model_dump())
    assert find_leaks(report.to_json(), [SECRET]) == []
    assert find_leaks(report.render(), [SECRET]) == []
    # (c) a printed spark-submit command line
    cmd = ["spark-submit"] + [a for k, v in conf.items() for a in ("--conf", f"{k}={v}")]
    assert find_leaks(" ".join(redact_argv(cmd)), [SECRET]) == []


@pytest.mark.slow
def test_spark_ui_environment_page_hides_the_secret(
    tmp_path: Path, repo_root: Path, free_port: int
) -> None:
    port = free_port
    script = textwrap.dedent(
        f"""
        import json, sys, time, urllib.request
        from lakehouse.config import load_config
        from lakehouse.spark.session import build_spark_session
        s = load_config("local", conf_dir={str(repo_root / "conf")!r}, environ={{"DRILL_SECRET": {SECRET!r}}},
                        overrides={{"spark": {{"conf": {{{KEY!r}: "${{DRILL_SECRET}}"}}}}}})
        spark = build_spark_session(s, extra_conf={{
            "spark.master": "local[1]", "spark.ui.enabled": "true", "spark.ui.port": "{port}",
            "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
            "spark.ui.showConsoleProgress": "false"}})
        app = spark.sparkContext.applicationId
        url = "http://127.0.0.1:{port}/api/v1/applications/" + app + "/environment"
        body = urllib.request.urlopen(url, timeout=60).read().decode()
        print("ENV-PAGE-BEGIN" + body + "ENV-PAGE-END")
        spark.stop()
        """
    )
    # the library and the job modules the configuration declares (conf/jobs/*.yaml)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo_root / "lib"), str(repo_root)])}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env,
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = proc.stdout.split("ENV-PAGE-BEGIN", 1)[1].split("ENV-PAGE-END", 1)[0]
    props = dict(json.loads(page)["sparkProperties"])
    assert props[KEY] == REDACTED
    assert find_leaks(page, [SECRET]) == []
    assert find_leaks(proc.stdout + proc.stderr, [SECRET]) == []
