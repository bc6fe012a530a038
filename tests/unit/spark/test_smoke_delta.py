from chispa import assert_df_equality


def test_delta_roundtrip(spark, tmp_path):
    df = spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string")
    path = str(tmp_path / "t")
    df.write.format("delta").save(path)
    back = spark.read.format("delta").load(path)
    assert_df_equality(back, df, ignore_row_order=True)
