"""Staged configuration loading: YAML files -> ``${VAR}`` substitution -> validation -> frozen objects.

Files, in the order they are merged (later wins, mappings merge key by key):

1. ``conf/base.yaml``: settings shared by every environment.
2. ``conf/jobs/<job>.yaml``: one file per job, merged under ``jobs.<job>``.
3. ``conf/env/<env>.yaml``: the environment overlay (``local``, ``emr``, ``kubernetes``, ...).

Every error names the file that set the offending value, the dotted key path, what is
allowed and what was found. Unknown keys are errors. Secrets never live in YAML: write
``${NAME}`` (or ``${NAME:-default}``) and the value is taken from the environment.

Examples
--------
>>> from lakehouse.config import load_config
>>> cfg = load_config("local")
>>> cfg.env
'local'
>>> cfg.spark.conf["spark.sql.shuffle.partitions"]
'8'
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lakehouse.config.models import (
    JobSettings,
    Settings,
    relative_path_problem,
    spark_conf_problems,
)
from lakehouse.errors import LakehouseError

__all__ = [
    "MAX_YAML_DEPTH",
    "MAX_YAML_VALUES",
    "ConfigError",
    "default_conf_dir",
    "job_config_model",
    "load_config",
]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

#: The most values (mappings, lists, scalars, keys) one configuration file may expand to.
#: YAML aliases (``*name``) and merge keys (``<<: *name``) repeat what their anchor holds,
#: so a few hundred bytes can expand to billions of values (an "alias bomb"); the real
#: configuration is a few hundred values.
MAX_YAML_VALUES = 100_000
#: The deepest nesting one configuration file may have (a recursive alias is infinitely deep).
MAX_YAML_DEPTH = 64


class ConfigError(LakehouseError, ValueError):
    """A configuration file is missing, unreadable or invalid.

    The message names the file, the key path, what is allowed and what was found.
    """


def default_conf_dir() -> Path:
    """Return the ``conf/`` directory: ``$LAKEHOUSE_CONF_DIR`` or ``./conf`` or the repo's."""
    env = os.environ.get("LAKEHOUSE_CONF_DIR")
    if env:
        return Path(env)
    cwd = Path.cwd() / "conf"
    if (cwd / "base.yaml").is_file():
        return cwd
    return Path(__file__).resolve().parents[3] / "conf"


# --------------------------------------------------------------------------- stages


class _ExpansionError(ConfigError, yaml.YAMLError):
    """The YAML expands past :data:`MAX_YAML_VALUES` or :data:`MAX_YAML_DEPTH`."""


def _too_big(detail: str) -> _ExpansionError:
    return _ExpansionError(
        f"{detail}; aliases (*name) and merge keys (<<) repeat what their anchor holds, so "
        "a short file can expand to billions of values: write the values out instead"
    )


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with merge keys (``<<``) bounded: resolving nested merges
    copies every merged pair, so a merge bomb would hang :func:`yaml.safe_load` itself."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        super().flatten_mapping(node)
        if len(node.value) > MAX_YAML_VALUES:
            raise _too_big(f"a mapping merges more than {MAX_YAML_VALUES} keys")


def _check_expansion(data: Any) -> None:
    """Raise :class:`_ExpansionError` if ``data`` expanded holds more than
    :data:`MAX_YAML_VALUES` values or nests deeper than :data:`MAX_YAML_DEPTH`.

    ``yaml`` builds an alias as a second reference to its anchor's object, so loading is
    cheap; every later stage (merge, substitution, validation) walks the expanded tree.
    This walk stops as soon as either bound is passed, so it costs at most the bound."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > MAX_YAML_VALUES:
            raise _too_big(f"it expands to more than {MAX_YAML_VALUES} values")
        if depth > MAX_YAML_DEPTH:
            raise _too_big(f"it nests deeper than {MAX_YAML_DEPTH} levels")
        if isinstance(value, dict):
            seen += len(value)  # the keys
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc.strerror}") from exc
    try:
        data = yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 (a SafeLoader subclass)
        _check_expansion(data)
    except _ExpansionError as exc:
        raise ConfigError(f"{path}: refused: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping; found {type(data).__name__}")
    return data


def _merge(
    base: dict[str, Any],
    overlay: Mapping[str, Any],
    origin: dict[tuple[str, ...], str],
    source: str,
    prefix: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Deep-merge ``overlay`` into ``base``, recording which file set each key."""
    out = dict(base)
    for key, value in overlay.items():
        if not isinstance(key, str):
            raise ConfigError(
                f"{source}: {'.'.join(prefix) or '<top>'}: keys must be strings; found {key!r}"
            )
        path = (*prefix, key)
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value, origin, source, path)
        else:
            out[key] = value
            _record(value, path, origin, source)
    return out


def _record(
    value: Any, path: tuple[str, ...], origin: dict[tuple[str, ...], str], source: str
) -> None:
    origin[path] = source
    if isinstance(value, Mapping):
        for k, v in value.items():
            _record(v, (*path, str(k)), origin, source)


def _substitute(
    value: Any,
    path: tuple[str, ...],
    origin: Mapping[tuple[str, ...], str],
    environ: Mapping[str, str],
) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, (*path, str(k)), origin, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, (*path, str(i)), origin, environ) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{_origin(origin, path)}: {'.'.join(path)}: environment variable {name!r} "
            f"is not set and has no default (write ${{{name}:-default}} to give one)"
        )

    return _VAR.sub(repl, value)


def _origin(origin: Mapping[tuple[str, ...], str], path: tuple[str, ...]) -> str:
    for end in range(len(path), 0, -1):
        if path[:end] in origin:
            return origin[path[:end]]
    return "<configuration>"


def _describe_error(
    err: Mapping[str, Any], origin: Mapping[tuple[str, ...], str], default_file: str
) -> str:
    loc = tuple(str(p) for p in err.get("loc", ()) if str(p) != "[key]")
    key = ".".join(loc) or "<top>"
    source = _origin(origin, loc) if loc else default_file
    kind = err.get("type", "")
    msg = str(err.get("msg", ""))
    if kind == "extra_forbidden":
        parent = loc[:-1]
        return f"{source}: {key}: unknown key {loc[-1]!r} under {'.'.join(parent) or '<top>'}"
    if kind == "missing":
        return f"{source}: {key}: required key is missing"
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    found = err.get("input")
    return f"{source}: {key}: {msg}; found {found!r}"


def load_config(
    env: str = "local",
    *,
    conf_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load, substitute, validate and freeze the configuration of environment ``env``.

    Parameters
    ----------
    env:
        Name of the overlay file ``conf/env/<env>.yaml``.
    conf_dir:
        The configuration directory; defaults to :func:`default_conf_dir`.
    environ:
        Variables for ``${VAR}`` substitution; defaults to ``os.environ``.
    overrides:
        A nested mapping merged last (tests, command-line ``--set``).

    Raises
    ------
    ConfigError
        Naming the file, key path, what is allowed and what was found.
    """
    root = Path(conf_dir) if conf_dir is not None else default_conf_dir()
    environ = os.environ if environ is None else environ
    env_file = _env_file(root, env)
    origin: dict[tuple[str, ...], str] = {}
    merged = _merge_sources(root, env_file, overrides, origin)
    merged = _substitute(merged, (), origin, environ)
    merged["env"] = env
    merged["conf_dir"] = str(root.resolve())
    _resolve_data_root(merged, root)
    settings = _validate(merged, origin, env_file)
    _check_references(settings, origin)
    return settings


def _env_file(root: Path, env: str) -> Path:
    """The overlay file of environment ``env``; it must exist."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", env):
        raise ConfigError(f"environment name must match [A-Za-z0-9_-]+; found {env!r}")
    env_file = root / "env" / f"{env}.yaml"
    if not env_file.is_file():
        known = sorted(p.stem for p in (root / "env").glob("*.yaml"))
        raise ConfigError(f"{env_file}: no such environment {env!r}; allowed: {known}")
    return env_file


def _merge_sources(
    root: Path,
    env_file: Path,
    overrides: Mapping[str, Any] | None,
    origin: dict[tuple[str, ...], str],
) -> dict[str, Any]:
    """base.yaml, then each jobs/<job>.yaml under ``jobs.<job>``, then the environment
    overlay, then ``overrides``; ``origin`` records which file set each key."""
    base_file = root / "base.yaml"
    merged = _merge({}, _read_yaml(base_file), origin, str(base_file))
    for job_file in sorted((root / "jobs").glob("*.yaml")):
        merged = _merge(
            merged, {"jobs": {job_file.stem: _read_yaml(job_file)}}, origin, str(job_file)
        )
    merged = _merge(merged, _read_yaml(env_file), origin, str(env_file))
    if overrides:
        merged = _merge(merged, overrides, origin, "<overrides>")
    for key in ("env", "conf_dir"):
        if key in merged:
            raise ConfigError(f"{_origin(origin, (key,))}: {key}: reserved key, set by the loader")
    return merged


def _resolve_data_root(merged: dict[str, Any], root: Path) -> None:
    """A relative local ``paths.data_root`` is relative to the directory above ``conf/``."""
    paths = merged.get("paths")
    data_root = paths.get("data_root") if isinstance(paths, dict) else None
    if not isinstance(data_root, str) or not data_root.strip():
        return  # the model reports a missing, mistyped or empty data root
    if "://" not in data_root and not os.path.isabs(data_root):
        merged["paths"]["data_root"] = str((root.resolve().parent / data_root).resolve())


def _validate(
    merged: dict[str, Any], origin: Mapping[tuple[str, ...], str], env_file: Path
) -> Settings:
    """The frozen settings, or one :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    if isinstance(merged.get("jobs"), dict):
        merged["jobs"] = _validate_jobs(merged["jobs"], origin, problems)
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        problems += [_describe_error(e, origin, str(env_file)) for e in exc.errors()]
    if problems or settings is None:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return settings


def job_config_model(module: str) -> type[JobSettings]:
    """The settings model of the job in ``module``: its ``Config`` class, else :class:`JobSettings`.

    Raises
    ------
    ConfigError
        The module cannot be imported, has no ``run`` function, or its ``Config`` is not
        a :class:`JobSettings` subclass.
    """
    try:
        mod = importlib.import_module(module)
    except (ImportError, SyntaxError) as exc:
        raise ConfigError(
            f"cannot import job module {module!r}: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(getattr(mod, "run", None)):
        raise ConfigError(f"job module {module!r} has no run(ctx) function")
    model = getattr(mod, "Config", JobSettings)
    if not (isinstance(model, type) and issubclass(model, JobSettings)):
        raise ConfigError(f"{module}.Config must subclass lakehouse.config.JobSettings")
    return model


def _validate_jobs(
    jobs: dict[str, Any], origin: Mapping[tuple[str, ...], str], problems: list[str]
) -> dict[str, Any]:
    """Each job's YAML validated against its module's ``Config``; errors go to ``problems``."""
    out: dict[str, Any] = {}
    for name, raw in jobs.items():
        where = ("jobs", str(name))
        if not isinstance(raw, dict) or not isinstance(raw.get("module"), str):
            out[name] = raw  # the Settings model reports the missing or malformed key
            continue
        try:
            model = job_config_model(raw["module"])
            out[name] = model.model_validate(raw)
        except ConfigError as exc:
            problems.append(
                f"{_origin(origin, (*where, 'module'))}: {'.'.join(where)}.module: {exc}"
            )
        except ValidationError as exc:
            for err in exc.errors():
                loc = (*where, *(str(p) for p in err.get("loc", ())))
                problems.append(
                    _describe_error({**err, "loc": loc}, origin, _origin(origin, where))
                )
    return out


def _check_references(settings: Settings, origin: Mapping[tuple[str, ...], str]) -> None:
    """Names that refer to other sections (tables, AQE profiles) must exist there; job
    paths and globs must stay inside the data root; well-known Spark numbers must be sane."""
    problems: list[str] = []
    for job_name, job in settings.jobs.items():
        problems += _job_reference_problems(settings, job_name, job, origin)
        problems += _job_path_problems(job_name, job, origin)
    problems += _spark_conf_problems(settings, origin)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def _spark_conf_problems(settings: Settings, origin: Mapping[tuple[str, ...], str]) -> list[str]:
    """Well-known numeric Spark settings (:data:`SPARK_CONF_CHECKS`) in ``spark.conf``,
    ``submit.conf`` and each AQE profile's ``extra``, checked at load time."""
    sections: list[tuple[tuple[str, ...], Mapping[str, str]]] = [
        (("spark", "conf"), settings.spark.conf)
    ]
    if settings.submit is not None:
        sections.append((("submit", "conf"), settings.submit.conf))
    sections += [
        (("aqe_profiles", name, "extra"), profile.extra)
        for name, profile in settings.aqe_profiles.items()
    ]
    problems = []
    for where, conf in sections:
        for key, reason in spark_conf_problems(conf).items():
            path = (*where, key)
            problems.append(
                f"{_origin(origin, path)}: {'.'.join(path)}: {reason}; found {conf[key]!r}"
            )
    return problems


def _job_path_problems(
    job_name: str, job: JobSettings, origin: Mapping[tuple[str, ...], str]
) -> list[str]:
    """A job's own paths and globs (settings named ``path``, ``glob``, ``*_path``, ``*_glob``,
    at any depth) are relative to the data root or landing folder: no ``..`` out of it."""
    problems = []
    for key, value in _named_paths(job.model_dump(), ("jobs", job_name)):
        problem = relative_path_problem(value)
        if problem:
            problems.append(f"{_origin(origin, key)}: {'.'.join(key)}: {problem}; found {value!r}")
    return problems


def _named_paths(value: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    found: list[tuple[tuple[str, ...], str]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            name = str(k)
            if isinstance(v, str) and (
                name in ("path", "glob") or name.endswith(("_path", "_glob"))
            ):
                found.append(((*path, name), v))
            else:
                found += _named_paths(v, (*path, name))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _named_paths(v, (*path, str(i)))
    return found


def _unknown(
    origin: Mapping[tuple[str, ...], str],
    path: tuple[str, ...],
    what: str,
    value: object,
    allowed: list[str],
) -> str:
    return (
        f"{_origin(origin, path)}: {'.'.join(path)}: unknown {what} {value!r}; allowed: {allowed}"
    )


def _job_reference_problems(
    settings: Settings, job_name: str, job: JobSettings, origin: Mapping[tuple[str, ...], str]
) -> list[str]:
    """Job ``job_name``'s AQE profile, inputs, outputs and table settings must exist, and
    each table its settings name must be one of its inputs or outputs."""
    problems: list[str] = []
    tables = sorted(settings.tables)
    if job.aqe_profile not in settings.aqe_profiles:
        path: tuple[str, ...] = ("jobs", job_name, "aqe_profile")
        problems.append(
            _unknown(origin, path, "AQE profile", job.aqe_profile, sorted(settings.aqe_profiles))
        )
    for kind in ("inputs", "outputs"):
        for i, table in enumerate(getattr(job, kind)):
            if table not in settings.tables:
                problems.append(
                    _unknown(origin, ("jobs", job_name, kind, str(i)), "table", table, tables)
                )
    declared = {*job.inputs, *job.outputs}
    for key, table in job.declared_tables().items():
        path = ("jobs", job_name, *key.split("."))
        if table not in settings.tables:
            problems.append(_unknown(origin, path, "table", table, tables))
        elif table not in declared:
            problems.append(
                f"{_origin(origin, path)}: {'.'.join(path)}: table {table!r} is not "
                f"declared in the job's inputs or outputs; declared: {sorted(declared)}"
            )
    return problems
