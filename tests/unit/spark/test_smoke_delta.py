from chispa import assert_df_equality


def test_delta_roundtrip(spark, tmp_path):
    df = spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string")
    path = str(tmp_path / "t")
    df.write.format("delta").save(path)
    back = spark.read.format("delta").load(path)
    assert_df_equality(back, df, ignore_row_order=True)


def test_a_table_another_writer_committed_after_an_early_look_exists(spark, tmp_path):
    # Delta caches a table's log per path. Looked at while a writer (another process) had
    # created _delta_log but not committed, isDeltaTable keeps answering no; the copy of a
    # committed table below stands for that writer.
    import shutil

    from lakehouse.spark.delta import DeltaTableRef

    path = tmp_path / "t"
    (path / "_delta_log").mkdir(parents=True)
    ref = DeltaTableRef.for_path(spark, str(path))
    assert not ref.exists() and ref.version() is None
    other = tmp_path / "other"
    spark.range(3).write.format("delta").save(str(other))
    shutil.copytree(other, path, dirs_exist_ok=True)
    assert ref.exists() and ref.version() == 0
