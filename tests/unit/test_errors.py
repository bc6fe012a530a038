"""Every error the library defines derives from LakehouseError and a built-in exception."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import lakehouse
from lakehouse.errors import LakehouseError


def _error_classes() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(lakehouse.__path__, "lakehouse."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == info.name:
                found.append(obj)
    return found


def test_every_project_error_has_the_root_and_a_builtin_base():
    errors = _error_classes()
    assert len(errors) > 20
    bad = [e.__qualname__ for e in errors if not issubclass(e, LakehouseError)]
    assert bad == []
    builtin = (ValueError, RuntimeError, TypeError, KeyError, TimeoutError, OSError)
    # a family root such as SCD2Error may stand alone; what is raised has a built-in base
    roots = {base for e in errors for base in e.__mro__[1:] if base in errors}
    raised = [e for e in errors if e is not LakehouseError and e not in roots]
    plain = [e.__qualname__ for e in raised if not issubclass(e, builtin)]
    assert plain == []
