"""A tiny shuffle-heavy job for the standalone-cluster tests and the decommission benchmark.

Runs through spark-submit (``spark-submit.sh standalone --app tests/integration/cluster_jobs/shuffle_job.py``)
with the packed environment on the executors. Two shuffles: ``k -> (sum, count)`` then a
repartition by key; each map and reduce partition sleeps ``--sleep-ms`` so a worker can be
decommissioned while shuffle blocks live on it. Writes a Delta table at ``--out`` and prints
one ``LAKEHOUSE_RESULT {json}`` line (elapsed seconds). The table records, per key, the
executors' Python executables and the lakehouse version they imported (from the env archive).
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="standalone")
    parser.add_argument("--out", required=True)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--sleep-ms", type=int, default=0)
    args = parser.parse_args(argv)

    from pyspark.sql import Row
    from pyspark.sql import functions as F

    from lakehouse.config import load_config
    from lakehouse.spark.session import build_spark_session

    started = time.monotonic()
    spark = build_spark_session(load_config(args.env), app_name="lakehouse-shuffle-job")
    sleep_s = args.sleep_ms / 1000.0
    keys = args.keys

    def slow_map(rows):  # runs on the executors, from ./environment/bin/python
        import lakehouse

        time.sleep(sleep_s)
        for row in rows:
            yield Row(k=row.id % keys, v=row.id, py=sys.executable, lv=lakehouse.__version__)

    schema = "k long, v long, py string, lv string"
    mapped = spark.createDataFrame(
        spark.range(args.rows, numPartitions=args.partitions).rdd.mapPartitions(slow_map), schema
    )

    def slow_reduce(rows):
        time.sleep(sleep_s)
        yield from rows

    agg = mapped.groupBy("k").agg(
        F.sum("v").alias("total"),
        F.count("*").alias("n"),
        F.array_sort(F.collect_set("py")).alias("pythons"),
        F.array_sort(F.collect_set("lv")).alias("versions"),
    )
    reduced = spark.createDataFrame(
        agg.repartition(args.partitions, "k").rdd.mapPartitions(slow_reduce), agg.schema
    )
    reduced.write.format("delta").mode("overwrite").save(args.out)
    result = {"elapsed_s": round(time.monotonic() - started, 2)}
    print("LAKEHOUSE_RESULT " + json.dumps(result), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
