"""Packaging: reproducible wheel, self-contained env archive, manifest and target checks."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from lakehouse.deploy.artifacts import (
    TargetMismatchError,
    build_artifacts,
    build_env_archive,
    build_wheel,
    check_env_archive,
    check_target,
    load_manifest,
)

PY = f"{sys.version_info.major}.{sys.version_info.minor}"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_wheel_is_reproducible(tmp_path: Path, repo_root: Path) -> None:
    first = build_wheel(repo_root, tmp_path / "a")
    second = build_wheel(repo_root, tmp_path / "b")
    assert first.name == "lakehouse_jobs-0.1.0-py3-none-any.whl"
    assert _sha(first) == _sha(second)
    later = build_wheel(repo_root, tmp_path / "c", source_date_epoch=1_700_000_000)
    assert _sha(later) != _sha(first)  # timestamps really come from SOURCE_DATE_EPOCH
    with zipfile.ZipFile(first) as a, zipfile.ZipFile(later) as c:
        assert [i.filename for i in a.infolist()] == [i.filename for i in c.infolist()]
        assert all(a.read(n) == c.read(n) for n in a.namelist())
        assert {i.date_time for i in a.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_wheel_content_and_record(tmp_path: Path, repo_root: Path) -> None:
    wheel = build_wheel(repo_root, tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "lakehouse/config/models.py" in names and "lakehouse/py.typed" in names
        assert "lakehouse/deploy/emr_serverless.py" in names
        assert not any("__pycache__" in n for n in names)
        meta = zf.read("lakehouse_jobs-0.1.0.dist-info/METADATA").decode()
        assert "Requires-Dist: pyspark==4.1.1" in meta.splitlines()
        record = zf.read("lakehouse_jobs-0.1.0.dist-info/RECORD").decode().splitlines()
        for line in record:
            name, digest, size = line.rsplit(",", 2)
            if digest:
                import base64

                data = zf.read(name)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                assert digest == "sha256=" + expected.decode() and int(size) == len(data)
        entry_points = zf.read("lakehouse_jobs-0.1.0.dist-info/entry_points.txt").decode()
        assert entry_points == "[console_scripts]\nlakehouse = lakehouse.cli:main\n"


@pytest.fixture(scope="module")
def tiny_env(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    """The env archive mechanism on a tiny closure (PyYAML + the project wheel)."""
    out = tmp_path_factory.mktemp("env")
    wheel = build_wheel(repo_root, out)
    return build_env_archive(out, requirements=["PyYAML"], wheels=[wheel], name="tiny")


@pytest.mark.slow
def test_env_archive_has_a_real_interpreter(tiny_env: Path) -> None:
    assert check_env_archive(tiny_env) == []
    with tarfile.open(tiny_env) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin/python"].isfile()  # the launcher: no symlink to the build host
    assert members[f"bin/python{PY}"].isfile() and members[f"bin/python{PY}"].size > 0
    assert f"lib/python{PY}/os.py" in members
    assert f"lib/python{PY}/site-packages/yaml/__init__.py" in members
    assert f"lib/python{PY}/site-packages/lakehouse/config/models.py" in members
    assert not any(n.startswith(f"lib/python{PY}/site-packages/pyspark") for n in members)
    assert not any("/test/" in n or "__pycache__" in n for n in members)
    assert {m.mtime for m in members.values()} == {315532800}


@pytest.mark.slow
def test_env_archive_runs_relocated_without_the_host_python(tiny_env: Path, tmp_path: Path) -> None:
    target = tmp_path / "somewhere" / "environment"
    target.mkdir(parents=True)
    with tarfile.open(tiny_env) as tar:
        tar.extractall(target, filter="tar")
    result = subprocess.run(
        [
            str(target / "bin" / "python"),
            "-c",
            "import sys, yaml, lakehouse; print(sys.prefix); print(yaml.__file__)",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    prefix, yaml_file = result.stdout.split()
    assert prefix == str(target)
    assert yaml_file.startswith(str(target))


def test_env_archive_check_catches_the_venv_symlink_trap(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    naive = tmp_path / "naive.tar.gz"
    with tarfile.open(naive, "w:gz") as tar:
        tar.add(venv, arcname=".")
    problems = check_env_archive(naive)
    assert any("pyvenv.cfg points at the build host's interpreter" in p for p in problems)
    assert any(p.startswith("bin/python") and "outside the archive" in p for p in problems), (
        problems
    )


def test_check_target_refuses_spark4_artifacts_on_emr7() -> None:
    manifest = {"targets": {"spark": "4.1.1", "delta": "4.2.0", "python": "3.11"}}
    check_target(manifest, release_label="emr-spark-8.1.0", spark_version="4.1.0")
    with pytest.raises(TargetMismatchError) as err:
        check_target(manifest, release_label="emr-7.12.0")
    assert str(err.value) == (
        "artifacts were built for Spark 4.1.1 (Delta 4.2.0) but release emr-7.12.0 runs Spark "
        "3.5; rebuild in an environment with pyspark 3.5.x / delta-spark 3.3.x (see "
        "scripts/test-compat.sh) or pick a release with Spark 4.1"
    )
    with pytest.raises(TargetMismatchError, match=r"unknown EMR release label 'emr-5\.36\.0'"):
        check_target(manifest, release_label="emr-5.36.0")
    with pytest.raises(TargetMismatchError) as err:
        check_target(manifest, spark_version="3.5.6")
    assert str(err.value) == (
        "artifacts were built for Spark 4.1.1 but the target runs Spark 3.5.6; "
        "required: Spark 4.1.x"
    )
    with pytest.raises(TargetMismatchError, match=r"built for Python 3\.11 but the target runs"):
        check_target(manifest, python_version="3.9.18")


def test_build_artifacts_writes_manifest_entry_and_resolved_config(
    tmp_path: Path, repo_root: Path
) -> None:
    built = build_artifacts(
        repo_root,
        tmp_path / "dist",
        envs=["local", "emr"],
        env_archive=False,
        environ={"LAKEHOUSE_DATA_BUCKET": "my-data", "TF_cluster_id": "j-123"},
    )
    manifest = json.loads((tmp_path / "dist" / "manifest.json").read_text())
    from importlib.metadata import version

    import pyspark

    assert manifest["targets"] == {
        "spark": pyspark.__version__,
        "delta": version("delta-spark"),
        "python": PY,
        "scala": "2.13" if pyspark.__version__.startswith("4.") else "2.12",
    }
    assert sorted(manifest["files"]) == [
        "config-emr.json",
        "config-local.json",
        "lakehouse-conf-0.1.0.tar.gz",
        "lakehouse_entry.py",
        "lakehouse_jobs-0.1.0-py3-none-any.whl",
    ]
    assert manifest["files"]["lakehouse_entry.py"]["sha256"] == _sha(built.entry)
    config = json.loads(built.configs["emr"].read_text())
    assert config["paths"]["data_root"] == "s3://my-data/lakehouse"
    assert config["submit"]["emr"]["cluster_id"] == "j-123"
    assert "from lakehouse.cli.main import main" in built.entry.read_text()
    again = load_manifest(tmp_path / "dist")
    assert again.wheel == built.wheel and again.env_archive is None


def test_conf_archive_reloads_to_the_same_settings(tmp_path: Path, repo_root: Path) -> None:
    from lakehouse.config import load_config

    environ = {"LAKEHOUSE_DATA_BUCKET": "my-data", "TF_cluster_id": "j-9"}
    built = build_artifacts(
        repo_root, tmp_path / "dist", envs=["emr", "kubernetes"], env_archive=False, environ=environ
    )
    assert built.conf_archive is not None
    assert built.conf_archive.name == "lakehouse-conf-0.1.0.tar.gz"
    conf_dir = tmp_path / "cluster-cwd" / "conf"
    conf_dir.mkdir(parents=True)
    with tarfile.open(built.conf_archive) as tar:
        tar.extractall(conf_dir, filter="tar")
    for env in ("emr", "kubernetes"):
        expected = load_config(env, environ=environ)
        # on the cluster no Terraform variables are set: everything was resolved at build time
        shipped = load_config(env, conf_dir=conf_dir, environ={})
        assert shipped.model_dump(exclude={"conf_dir"}) == expected.model_dump(exclude={"conf_dir"})
    assert load_manifest(tmp_path / "dist").conf_archive == built.conf_archive
