"""Configuration: environment variables (with the reference's names), ``.env``, plugins.toml.

The environment describes the machine (where the database, the media and the derived
files live); ``plugins.toml`` describes the installation (which plugins run, their
settings, extra libraries). With nothing configured, everything lands under ``./data``
so a first ``make serve`` works on an empty machine.
"""

from __future__ import annotations

import logging
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import msgspec
from dotenv import dotenv_values

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # every process's log lines
# Threads per serving process on SQLite unless ``[kernel] threads`` says otherwise. The
# mixed benchmark (64 connections, 2 processes on 2 CPUs, 30 s runs taking turns, three
# of each): 3 threads 3,265-3,358 requests/s against asyncio's 6 3,006-3,218, worst
# route p99 90-95 ms against 97-108; in a second set 2 threads 3,576-3,714, 3 threads
# 3,350-3,560 (p99 72-91 ms), 4 threads 3,200-3,419.
SQLITE_THREADS = 3


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to fix."""


class LibrarySpec(msgspec.Struct, forbid_unknown_fields=True):
    """One media folder tree served by imageapi (``[[kernel.libraries]]``)."""

    id: int
    name: str
    path: str


class KernelSettings(msgspec.Struct, forbid_unknown_fields=True):
    """The ``[kernel]`` section of plugins.toml."""

    libraries: list[LibrarySpec] = []
    #: moved to ``[plugins.uploads] max_bytes``; still honoured there when set here
    upload_max_bytes: int | None = None
    hash_workers: int = 0  # 0 = one per CPU
    scan_on_startup: bool = True
    watch: bool = True
    backlog_per_tick: int = 500
    hook_timeout_seconds: float = 120.0
    default_library_name: str = "main"
    #: per pooled connection; 0 = read through the page cache
    sqlite_mmap_mb: Annotated[int, msgspec.Meta(ge=0)] = 0
    #: SQLite's own page cache per pooled connection (private memory, grown as used)
    sqlite_cache_mb: Annotated[int, msgspec.Meta(ge=1)] = 2
    #: PostgreSQL scale-out: a claim on a unit of work expires this long after its
    #: owner's last renewal (a killed worker's files go back to the others)
    lease_seconds: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    #: how often every process records that it is alive (``GET /health`` lists them)
    heartbeat_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    #: a worker with nothing to do looks for hashing and backlog work this often
    work_poll_seconds: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    #: threads per serving process for the event loop's blocking work (queries, file
    #: reads); 0 = ``SQLITE_THREADS`` on SQLite, asyncio's default (CPUs + 4) on
    #: PostgreSQL, whose queries mostly wait on the network. The threads' Python work
    #: shares one interpreter lock, so on SQLite with the data in the page cache fewer
    #: threads hand it back and forth less (see ``SQLITE_THREADS``). More may pay where
    #: blocking work mostly waits (slow or network disks).
    threads: Annotated[int, msgspec.Meta(ge=0)] = 0


@dataclass
class Config:
    """Everything the kernel reads at start-up, resolved to absolute paths."""

    data_dir: Path
    database_url: str
    base_path: Path | None
    bind_host: str
    bind_port: int
    cors_allowed_origins: list[str]
    secret_key: str
    excluded_dirs: list[str]
    watch_quick_interval: float
    watch_full_interval: float
    log_level: str
    config_file: Path | None
    kernel: KernelSettings
    plugin_sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)


def _env(environ: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = environ.get(name)
    return value if value not in (None, "") else default


def _log_level(environ: Mapping[str, str]) -> str:
    """LOG_LEVEL wins; RUST_LOG ("info", or "imageapi=debug,info") is read for operators
    moving from the Rust server."""
    raw = _env(environ, "LOG_LEVEL") or _env(environ, "RUST_LOG") or "info"
    level = "info"
    for part in raw.split(","):
        part = part.strip()
        if "=" in part:
            target, _, value = part.partition("=")
            if target.strip() in ("imageapi", "image_api"):
                level = value
                break
        elif part:
            level = part
    level = level.strip().upper()
    level = {"TRACE": "DEBUG", "WARN": "WARNING", "OFF": "CRITICAL"}.get(level, level)
    if level not in logging.getLevelNamesMapping():
        raise ConfigError(f"log level {raw!r} is not one of debug, info, warning, error")
    return level


def _database_url(raw: str | None, data_dir: Path) -> str:
    """Accept an SQLAlchemy URL, or a bare SQLite file path as the Rust server did."""
    if raw is None:
        return f"sqlite:///{data_dir / 'imageapi.db'}"
    if "://" in raw:
        return raw
    if raw == ":memory:":
        return "sqlite://"
    return f"sqlite:///{Path(raw).expanduser().resolve()}"


def _bind(raw: str) -> tuple[str, int]:
    raw = raw.removeprefix("http://")
    host, sep, port = raw.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"BIND_URL must be HOST:PORT, got {raw!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _secret_key(environ: Mapping[str, str], data_dir: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the data dir."""
    given = _env(environ, "SECRET_KEY")
    if given:
        return given
    key_file = data_dir / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    tmp = key_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    os.replace(tmp, key_file)
    return key


def _read_toml(path: Path | None) -> dict[str, Any]:
    if path is None or not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _interval(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = _env(environ, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def load_config(
    environ: Mapping[str, str] | None = None,
    *,
    env_file: Path | None = Path(".env"),
    config_file: Path | None = None,
) -> Config:
    """Build the Config from the process environment (plus ``.env``) and plugins.toml."""
    merged: dict[str, str] = {}
    if env_file is not None and env_file.exists():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)

    data_dir = Path(_env(merged, "IMAGEAPI_DATA_DIR", "data")).expanduser().resolve()
    if config_file is None:
        config_file = Path(_env(merged, "IMAGEAPI_CONFIG", "plugins.toml")).expanduser()
        if not config_file.exists() and "IMAGEAPI_CONFIG" in merged:
            raise ConfigError(f"IMAGEAPI_CONFIG points at {config_file}, which does not exist")
    toml = _read_toml(config_file)
    unknown_top = set(toml) - {"kernel", "plugins"}
    if unknown_top:
        raise ConfigError(f"{config_file}: unknown section(s) {sorted(unknown_top)}")
    try:
        kernel_settings = msgspec.convert(toml.get("kernel", {}), KernelSettings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{config_file}: [kernel]: {exc}") from exc
    plugins = toml.get("plugins", {})
    if not isinstance(plugins, dict) or not all(isinstance(v, dict) for v in plugins.values()):
        raise ConfigError(f"{config_file}: [plugins.NAME] sections must be tables")

    base_path = _env(merged, "BASE_PATH")
    host, port = _bind(_env(merged, "BIND_URL", "127.0.0.1:8080") or "")
    origins = [o.strip() for o in (_env(merged, "CORS_ALLOWED_ORIGINS", "") or "").split(",")]
    excluded = [e.strip() for e in (_env(merged, "EXCLUDED_DIRS", "") or "").split(",")]

    return Config(
        data_dir=data_dir,
        database_url=_database_url(_env(merged, "DATABASE_URL"), data_dir),
        base_path=Path(base_path).expanduser().resolve() if base_path else None,
        bind_host=host,
        bind_port=port,
        cors_allowed_origins=[o for o in origins if o],
        secret_key=_secret_key(merged, data_dir),
        excluded_dirs=[e for e in excluded if e],
        watch_quick_interval=_interval(merged, "WATCH_QUICK_INTERVAL_SECONDS", 60.0),
        watch_full_interval=_interval(merged, "WATCH_FULL_INTERVAL_SECONDS", 3600.0),
        log_level=_log_level(merged),
        config_file=config_file if config_file.exists() else None,
        kernel=kernel_settings,
        plugin_sections={name: dict(section) for name, section in plugins.items()},
        env=merged,
    )
