"""check_data_root: a data root that is a file, or has no landing folder, is refused up front."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.config import ConfigError, DataRootError, Settings, check_data_root, load_config
from lakehouse.errors import LakehouseError


def _settings(data_root: str, **paths: str) -> Settings:
    return load_config("local", environ={}, overrides={"paths": {"data_root": data_root, **paths}})


def test_error_class_is_a_config_error() -> None:
    assert issubclass(DataRootError, ConfigError)
    assert issubclass(DataRootError, LakehouseError)
    assert issubclass(DataRootError, ValueError)


def test_a_root_with_its_landing_folder_passes(tmp_path: Path) -> None:
    (tmp_path / "data" / "landing").mkdir(parents=True)
    check_data_root(_settings(str(tmp_path / "data")))


def test_a_mistyped_root_is_refused_and_not_created(tmp_path: Path) -> None:
    root = tmp_path / "dtaa"
    with pytest.raises(DataRootError) as info:
        check_data_root(_settings(str(root)))
    assert str(info.value) == (
        f"data root {root} does not exist (paths.data_root; is it mistyped?); create it with "
        f"its landing folder {root / 'landing'}, or generate sample data into it: "
        "python -m harness generate"
    )
    assert not root.exists()
    check_data_root(_settings(str(root)), require_landing=False)  # nothing to read from


def test_a_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.write_text("not a folder")
    for require_landing in (True, False):
        with pytest.raises(DataRootError) as info:
            check_data_root(_settings(str(root)), require_landing=require_landing)
        assert str(info.value) == (
            f"data root {root} is not a directory (paths.data_root); point "
            "LAKEHOUSE_DATA_ROOT (or paths.data_root) at a folder"
        )


def test_a_root_without_landing_folder_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataRootError) as info:
        check_data_root(_settings(str(root)))
    assert str(info.value) == (
        f"landing folder {root / 'landing'} does not exist (paths.landing under data root "
        f"{root}); create it and put the landing files there, or generate sample data: "
        "python -m harness generate"
    )
    (root / "landing").write_text("a file")
    with pytest.raises(DataRootError, match=r"landing folder .* is not a directory"):
        check_data_root(_settings(str(root)))


def test_file_uris_are_checked_object_stores_are_not(tmp_path: Path) -> None:
    with pytest.raises(DataRootError, match="does not exist"):
        check_data_root(_settings(f"file://{tmp_path / 'nope'}"))
    check_data_root(_settings("s3a://bucket/lakehouse"))


def test_a_landing_uri_elsewhere_is_not_checked(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    check_data_root(_settings(str(root), landing="s3a://bucket/landing"))
