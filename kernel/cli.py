"""The ``imageapi`` command line: serve, scan, user, plugins, db (plugins add more)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
from typing import TYPE_CHECKING

import click

from kernel import migrate
from kernel.auth import (
    PasswordTooLong,
    UserExists,
    count_users,
    create_user,
    delete_user,
    list_users,
)
from kernel.auth import set_password as store_password
from kernel.background import BackgroundLock, stop_with_parent
from kernel.config import LOG_FORMAT, Config, ConfigError, load_config
from kernel.core import Kernel
from kernel.manager import build_plugin_manager
from kernel.media.demo import create_demo_library

if TYPE_CHECKING:
    from litestar import Litestar

log = logging.getLogger("imageapi")


def _config() -> Config:
    try:
        return load_config()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def command_kernel(
    config: Config | None = None,
    *,
    demo: bool = False,
    only: list[str] | None = None,
    migrate: bool = False,
) -> Kernel:
    """The kernel for a command (ours or a plugin's ``cli_commands``): without BASE_PATH
    the demo library is the default one, as for ``imageapi serve``."""
    config = config or _config()
    default_library = None
    if config.base_path is None:
        default_library = config.data_dir / "demo-library"
        if demo:
            create_demo_library(default_library)
        else:
            default_library.mkdir(parents=True, exist_ok=True)
    try:
        kernel = Kernel(config, only=only, default_library=default_library)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if migrate:
        kernel.migrate()
    return kernel


def _read_password(password_stdin: bool, confirm: bool = True) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)


@click.group()
@click.version_option(package_name="imageapi")
def cli() -> None:
    """imageapi: a self-hosted photo and video server."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)


SERVE_NO_SCAN_ENV = "IMAGEAPI_SERVE_NO_SCAN"  # from ``serve --no-scan`` to its workers
SERVE_ONLY_ENV = "IMAGEAPI_SERVE_ONLY"  # from ``serve --no-background`` to its workers


@cli.command()
@click.option("--no-scan", is_flag=True, help="Do not scan or watch the libraries.")
@click.option(
    "--no-background",
    is_flag=True,
    help="Only serve: no scans, no backlogs, no pre-generation (`imageapi worker` does them).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="one per CPU",
    help="Serving processes; one of them also scans, watches and catches up backlogs.",
)
def serve(no_scan: bool, no_background: bool, workers: int) -> None:
    """Migrate, make sure a user exists, and serve on BIND_URL."""
    import uvicorn

    from kernel.app import create_app

    config = _config()
    logging.getLogger().setLevel(config.log_level)
    kernel = command_kernel(config, demo=True, migrate=True)
    password = ""
    if count_users(kernel.db) == 0:
        password = secrets.token_urlsafe(12)
        try:
            create_user(kernel.db, "admin", password)
        except UserExists:  # another server of the same database made it a moment ago
            password = ""
    if password:
        host = "127.0.0.1" if config.bind_host in ("0.0.0.0", "::") else config.bind_host
        click.echo(
            "\nCreated the first user.\n"
            f"  user name: admin\n  password:  {password}\n"
            f"Log in:  curl -s -X POST http://{host}:{config.bind_port}/login "
            "-H 'Content-Type: application/json' "
            f'-d \'{{"username":"admin","password":"{password}"}}\'\n'
            "Change it with:  imageapi user passwd admin\n"
        )
    for library in kernel.libraries:
        click.echo(f"Serving library {library.id} ({library.name}): {library.root}")
    if workers > 1:
        # The supervisor only starts and watches the serving processes: it becomes a fresh
        # interpreter (``kernel.supervisor``), instead of keeping this one's ~85 MB of
        # loaded application for nothing.
        kernel.db.dispose()
        os.environ[SERVE_NO_SCAN_ENV] = "1" if no_scan or no_background else ""
        os.environ[SERVE_ONLY_ENV] = "1" if no_background else ""
        click.echo(f"{workers} serving processes")
        sys.stdout.flush()
        sys.stderr.flush()
        code = f"from kernel.supervisor import main; main({workers})"
        os.execv(sys.executable, [sys.executable, "-c", code])
    if no_scan:
        kernel.config.kernel.scan_on_startup = False
        kernel.config.kernel.watch = False
    kernel.serve_only = no_background
    background = not (no_scan or no_background)
    app = create_app(kernel, migrate=False, background=background, freeze_heap=True)
    uvicorn.run(
        app, host=config.bind_host, port=config.bind_port, log_level=config.log_level.lower()
    )


def worker_app() -> Litestar:
    """The app of one of ``serve --workers N``'s processes (uvicorn builds it in each).

    The first to lock ``DATA_DIR/background.lock`` does the background work (scans, the
    watcher, backlogs, pre-generation); the others serve and take over if it dies."""
    from kernel.app import create_app

    config = _config()
    logging.basicConfig(level=config.log_level, format=LOG_FORMAT)
    kernel = command_kernel(config)
    stop_with_parent()
    scan = not os.environ.get(SERVE_NO_SCAN_ENV)
    kernel.serve_only = bool(os.environ.get(SERVE_ONLY_ENV))
    if not kernel.serve_only:  # without scans too: one process pre-generates, not all
        kernel.background_lock = BackgroundLock(config.data_dir / "background.lock")
    return create_app(kernel, migrate=False, background=scan, freeze_heap=True)


WORK_KINDS = ("scan", "hash")  # the kernel's own kinds of background work


@cli.command()
@click.option(
    "--only",
    default="",
    metavar="KINDS",
    help="Comma-separated: scan, hash and plugin names (thumbnails,exif,hls,...); default all.",
)
def worker(only: str) -> None:
    """Do background work with no HTTP port: hashing, every plugin's backlog, HLS jobs,
    and scanning and watching while this process holds the scan lock. Several workers on
    several machines share one PostgreSQL (on SQLite: one process per machine)."""
    import signal

    config = _config()
    logging.getLogger().setLevel(config.log_level)
    kinds = {k.strip() for k in only.split(",") if k.strip()}
    plugins = None
    if kinds:
        try:
            enabled = set(build_plugin_manager(config).enabled_names())
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        unknown = kinds - enabled - set(WORK_KINDS)
        if unknown:
            raise click.ClickException(
                f"--only: {', '.join(sorted(unknown))} is neither {' nor '.join(WORK_KINDS)}"
                " nor an enabled plugin"
            )
        plugins = sorted(kinds & enabled)
    kernel = command_kernel(config, only=plugins, migrate=True)
    if kinds:
        kernel.work_kinds = frozenset(kinds)
    if not kernel.claims.shared:
        kernel.background_lock = BackgroundLock(config.data_dir / "background.lock")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        kernel.roles.append("worker")
        await kernel.start(background=True)
        click.echo(f"worker {kernel.claims.owner} running: {', '.join(kernel.roles)}")
        try:
            await stop.wait()
        finally:
            await kernel.stop()

    asyncio.run(run())


@cli.command()
@click.option("--full/--quick", default=True, help="Walk everything (default) or recent files.")
def scan(full: bool) -> None:
    """Scan the libraries once, hash new files and run every plugin's backlog."""
    kernel = command_kernel(migrate=True)
    bars: dict[str, object] = {}

    def progress(phase: str, done: int, total: int | None) -> None:
        if total:
            bar = bars.get(phase)
            if bar is None:
                bar = click.progressbar(length=total, label=f"{phase:>6}", file=sys.stderr)
                bar.__enter__()
                bars[phase] = bar
            bar.update(done - bar.pos)  # type: ignore[attr-defined]
        else:
            click.echo(f"\r  {phase:>6}: {done} files", nl=False, err=True)

    async def run() -> None:
        await kernel.hooks.on_startup()
        try:
            report = await kernel.scanner.scan(full=full, progress=progress)
        finally:
            await kernel.hooks.on_shutdown()
        for bar in bars.values():
            bar.__exit__(None, None, None)  # type: ignore[attr-defined]
        click.echo(f"\n{report.summary()}")

    asyncio.run(run())


@cli.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_add(name: str, password_stdin: bool) -> None:
    kernel = command_kernel(migrate=True)
    try:
        created = create_user(kernel.db, name, _read_password(password_stdin))
    except (PasswordTooLong, UserExists, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"user {created.username} added (id {created.id})")


@user.command("list")
def user_list() -> None:
    kernel = command_kernel(migrate=True)
    for row in list_users(kernel.db):
        click.echo(f"{row.id}\t{row.username}")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_passwd(name: str, password_stdin: bool) -> None:
    kernel = command_kernel(migrate=True)
    try:
        store_password(kernel.db, name, _read_password(password_stdin))
    except (PasswordTooLong, KeyError, ValueError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from exc
    click.echo(f"password of {name} changed; tokens issued before now no longer work")


@user.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def user_delete(name: str, yes: bool) -> None:
    """Remove a user: their tokens stop working and their favourites are deleted."""
    kernel = command_kernel(migrate=True)
    if not yes:
        click.confirm(f"Delete user {name} and their favourites?", abort=True)
    try:
        delete_user(kernel.db, name)
    except KeyError as exc:
        raise click.ClickException(str(exc).strip("'\"")) from exc
    click.echo(f"user {name} deleted")


@cli.group()
def plugins() -> None:
    """Inspect plugins."""


@plugins.command("list")
def plugins_list() -> None:
    """Every known plugin: version, where it comes from, enabled, hooks implemented."""
    try:
        registry = build_plugin_manager(_config())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    for info in registry.infos.values():
        state = "enabled" if info.enabled else "disabled"
        hooks = ", ".join(info.hooks) if info.enabled else "-"
        click.echo(f"{info.name:<14} {info.version:<10} {info.source:<28} {state:<9} {hooks}")


@cli.group()
def db() -> None:
    """Database migrations (one branch per plugin)."""


def _branch(kernel: Kernel, name: str) -> migrate.Branch:
    for branch in kernel.migration_branches():
        if branch.name == name:
            return branch
    known = ", ".join(b.name for b in kernel.migration_branches())
    raise click.ClickException(f"no migration branch {name!r} among enabled plugins ({known})")


@db.command("upgrade")
@click.argument("plugin", required=False)
def db_upgrade(plugin: str | None) -> None:
    """Upgrade the kernel and every enabled plugin, or just PLUGIN."""
    kernel = command_kernel()
    branches = [_branch(kernel, plugin)] if plugin else kernel.migration_branches()
    for branch in branches:
        migrate.upgrade(kernel.db, branch)
        click.echo(f"{branch.name}: {migrate.current(kernel.db, branch)}")


@db.command("downgrade")
@click.argument("plugin")
@click.option("--revision", default="base", show_default=True)
def db_downgrade(plugin: str, revision: str) -> None:
    """Downgrade one plugin's branch (to base: its tables are dropped)."""
    kernel = command_kernel()
    branch = _branch(kernel, plugin)
    migrate.downgrade(kernel.db, branch, revision)
    click.echo(f"{branch.name}: {migrate.current(kernel.db, branch) or 'base'}")


@db.command("current")
def db_current() -> None:
    """The revision of every branch and its head."""
    kernel = command_kernel()
    for branch in kernel.migration_branches():
        now = migrate.current(kernel.db, branch) or "base"
        click.echo(f"{branch.name:<14} {now:<14} head {migrate.head(branch)}")


def _add_plugin_commands() -> None:
    try:
        registry = build_plugin_manager(load_config())
    except Exception as exc:  # a broken config must not hide --help or config errors
        log.debug("plugin commands unavailable: %s", exc)
        return
    registry.declarations.cli_commands(cli)


def main() -> None:
    _add_plugin_commands()
    cli()


if __name__ == "__main__":
    main()
