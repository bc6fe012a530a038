"""Drill 9: a YAML alias bomb in a configuration file is refused within seconds.

Nine levels of nine aliases (about 500 bytes) in ``conf/env/local.yaml`` expand to 9**9
(387 million) values; loading used to run past 90 s with memory climbing (issue 29, item
5). The drill loads it in a child process held to 1.5 GB of address space and 60 s, so a
regression fails the drill instead of exhausting the machine.

Pass criterion: the child exits on its own within 60 s (refused well within that) with
``ConfigError`` whose message names the file and the expansion; the same holds for a merge
key (``<<``) bomb, which would hang the YAML parser itself.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

CHILD = textwrap.dedent(
    """
    import sys
    from lakehouse.config import ConfigError, load_config
    try:
        load_config("local", conf_dir=sys.argv[1], environ={})
    except ConfigError as exc:
        print("REFUSED", exc)
    else:
        print("LOADED")
    """
)


def _bomb(levels: int = 9, width: int = 9, merge: bool = False) -> str:
    if merge:
        lines = ["x0: &a0 {k: 1}"]
        for i in range(1, levels + 1):
            refs = ", ".join([f"*a{i - 1}"] * width)
            lines.append(f"x{i}: &a{i} {{<<: [{refs}], k{i}: 1}}")
    else:
        lines = ["x0: &a0 [lol]"]
        for i in range(1, levels + 1):
            lines.append(f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def _limit_memory() -> None:
    limit = 1536 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@pytest.mark.parametrize("merge", [False, True], ids=["aliases", "merge-keys"])
def test_alias_bomb_is_refused_within_seconds(tmp_path: Path, repo_root: Path, merge: bool) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(repo_root / "conf", conf)
    bomb = _bomb(merge=merge)
    assert len(bomb) < 700
    local = conf / "env" / "local.yaml"
    local.write_text(local.read_text() + "\n" + bomb)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo_root / "lib"), str(repo_root)])}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        preexec_fn=_limit_memory,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-2000:]
    detail = (
        "a mapping merges more than 100000 keys"
        if merge
        else ("it expands to more than 100000 values")
    )
    assert proc.stdout.startswith(f"REFUSED {local}: refused: {detail}; "), proc.stdout
    print(f"refused in {elapsed:.1f} s")
