"""Terraform outputs as shell variables: how the environment YAML gets its ``TF_*`` values.

The ``conf/env/*.yaml`` files read values such as ``${TF_cluster_id:-}``;
``terraform output -json | lakehouse submit tf-env`` prints the ``export`` lines that set them.

Examples
--------
>>> shell_exports({"cluster_id": {"value": "j-1"}, "tags": {"value": {"a": "b c"}}})
['export TF_cluster_id=j-1', 'export TF_tags=\\'{"a":"b c"}\\'']
>>> shell_exports({"db_password": {"value": "hunter2", "sensitive": True}})
[]
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

__all__ = ["shell_exports"]


def shell_exports(outputs: Mapping[str, Any], prefix: str = "TF_") -> list[str]:
    """``export <prefix><name>=<value>`` per output of ``terraform output -json``, by name.

    Maps and lists become compact JSON; sensitive outputs are never exported into a shell.
    """
    lines = []
    for name, item in sorted(outputs.items()):
        if isinstance(item, dict) and item.get("sensitive"):
            continue
        value = item.get("value") if isinstance(item, dict) else item
        if isinstance(value, dict | list):
            value = json.dumps(value, separators=(",", ":"))
        lines.append(f"export {prefix}{name}={shlex.quote(str(value))}")
    return lines
