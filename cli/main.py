"""`allegro-backup`: run the service locally, link sellers, watch and repair the backup."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from cli.service_api import ServiceApi, ServiceApiError
from core.logging import configure_logging
from core.settings import Settings, get_settings
from core.states import TokenStatus

app = typer.Typer(
    help="Allegro Orders Backup: keep every Allegro order forever.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()
errors = Console(stderr=True)


@contextmanager
def services_answer(what: str) -> Iterator[None]:
    """Turn an unreachable Kafka or PostgreSQL into one line on stderr and exit status 1 (a traceback
    of hundreds of lines tells an operator less than the reason)."""
    from aiokafka.errors import KafkaError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (KafkaError, SQLAlchemyError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else ""
        errors.print(f"[red]{what} failed:[/red] {type(exc).__name__}: {reason}")
        raise typer.Exit(1) from None


ApiUrl = Annotated[str, typer.Option("--api-url", envvar="BACKUP_API_URL", help="Our REST API.")]
UserId = Annotated[str, typer.Argument(help="Your system's user id the Allegro accounts belong to.")]
TokenId = Annotated[str, typer.Argument(help="The linked account's token id.")]
DEFAULT_API = "http://127.0.0.1:8000"


def _api(api_url: str) -> ServiceApi:
    key = get_settings().api.keys.get_secret_value().split(",")[0]
    return ServiceApi(api_url, key)


def _call(api_url: str, method: str, path: str, **kwargs: Any) -> Any:
    api = _api(api_url)
    try:
        return api.request(method, path, **kwargs)
    except ServiceApiError as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    finally:
        api.close()


@app.command()
def up(
    orders: Annotated[int, typer.Option(help="Orders the demo seller starts with.")] = 5000,
    user_id: Annotated[str, typer.Option(help="User id the demo seller is linked for.")] = "demo-user",
    new_per_s: Annotated[float, typer.Option(help="New orders per second afterwards.")] = 2.0,
    changes_per_s: Annotated[float, typer.Option(help="Order changes per second afterwards.")] = 1.0,
    no_stack: Annotated[bool, typer.Option("--no-stack", help="Use running Kafka/PostgreSQL.")] = False,
    approve_in_browser: Annotated[
        bool,
        typer.Option(
            "--approve-in-browser",
            help="Wait for you to approve the demo seller's link on the simulator's page in a browser.",
        ),
    ] = False,
) -> None:
    """Run everything locally on the simulator with a demo seller; Ctrl-C stops it all."""
    from cli.demo import DemoOptions, run_demo

    # The demo runs on the bundled simulator: a development environment by definition, for this
    # process and the ones it starts.
    os.environ.setdefault("ENVIRONMENT", "development")
    get_settings.cache_clear()
    configure_logging("WARNING", json_logs=False)
    options = DemoOptions(
        user_id=user_id,
        orders=orders,
        new_per_s=new_per_s,
        changes_per_s=changes_per_s,
        start_stack=not no_stack,
        approve_in_browser=approve_in_browser,
    )
    try:
        run_demo(get_settings(), options, console)
    except (RuntimeError, TimeoutError, ServiceApiError) as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


@app.command()
def link(user_id: UserId, api_url: ApiUrl = DEFAULT_API, wait: bool = True) -> None:
    """Link an Allegro seller account: prints the code to enter at Allegro, then waits for approval."""
    started = _call(api_url, "POST", f"/v1/users/{user_id}/tokens")
    token_id = started["token_id"]
    code = started["user_code"]
    spaced = f"{code[:3]} {code[3:6]} {code[6:]}"
    complete = started.get("verification_uri_complete")
    if complete:
        # soft_wrap: a link is never folded across lines
        console.print(
            f"Open [bold]{complete}[/bold] in a browser, signed in as the seller, and approve", soft_wrap=True
        )
        console.print(
            f"or open {started['verification_uri']} and enter [bold]{spaced}[/bold]", soft_wrap=True
        )
    else:
        console.print(
            f"Open [bold]{started['verification_uri']}[/bold] in a browser, signed in as the seller, "
            f"enter [bold]{spaced}[/bold] and approve",
            soft_wrap=True,
        )
    console.print(f"token id: {token_id}")
    if not wait:
        return
    with console.status("Waiting for approval at Allegro…"):
        while True:
            token = _call(api_url, "GET", f"/v1/users/{user_id}/tokens/{token_id}")
            if token["status"] != TokenStatus.PENDING:
                break
            time.sleep(2)
    if token["status"] == TokenStatus.RELINKED:
        console.print(
            f"Link {token_id}: [green]relinked[/green]: this seller was linked before; its backup goes on "
            f"as token {token['relinked_to']} (same orders, same history)."
        )
        return
    color = "green" if token["status"] == TokenStatus.ACTIVE else "red"
    console.print(f"Link {token_id}: [{color}]{token['status']}[/{color}]")
    if token["status"] != TokenStatus.ACTIVE:
        raise typer.Exit(1)


# Token ids are typed back into `sync`/`resync`: never cut, whatever the terminal's width or a pipe.
_ID_COLUMN = Column("token id", no_wrap=True, min_width=36)
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (the API's fields) instead of a table.")]


def _print_json(value: Any) -> None:
    """JSON on stdout, for scripts (no colour, no wrapping)."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


@app.command()
def tokens(user_id: UserId, api_url: ApiUrl = DEFAULT_API, as_json: AsJson = False) -> None:
    """List the user's linked accounts."""
    body = _call(api_url, "GET", f"/v1/users/{user_id}/tokens")
    items = body["items"] if isinstance(body, dict) else body
    if as_json:
        _print_json(items)
        return
    table = Table(_ID_COLUMN, "status", "seller", "login", "created")
    for token in items:
        table.add_row(
            str(token["id"]),
            token["status"],
            str(token.get("seller_id") or ""),
            str(token.get("login") or ""),
            str(token.get("created_at") or ""),
        )
    console.print(table)


@app.command()
def status(user_id: UserId, api_url: ApiUrl = DEFAULT_API, as_json: AsJson = False) -> None:
    """Per linked account: state, journal lag, last sync, order counts."""
    body = _call(api_url, "GET", f"/v1/users/{user_id}/tokens")
    items = body["items"] if isinstance(body, dict) else body
    details = [_call(api_url, "GET", f"/v1/users/{user_id}/tokens/{summary['id']}") for summary in items]
    if as_json:
        _print_json(details)
        return
    if not details:
        errors.print(f"No Allegro account is linked for user {user_id!r} (allegro-backup link {user_id}).")
        raise typer.Exit(1)
    table = Table(_ID_COLUMN, "status", "journal lag", "last sync", "last success", "orders", "last error")
    for token in details:
        token_id = token["id"]
        lag = token.get("journal_lag_seconds")
        table.add_row(
            str(token_id),
            _status_text(token),
            "" if lag is None else f"{float(lag):.0f} s",
            str(token.get("last_sync_at") or ""),
            str(token.get("last_success_at") or ""),
            str(token["orders_stored"]),
            str(token.get("last_error") or ""),
        )
    console.print(table)


def _status_text(token: dict[str, Any]) -> str:
    """The status, and for access_denied how long it lasts and when it is tried again."""
    denied = token.get("access_denied")
    if token["status"] != TokenStatus.ACCESS_DENIED or not denied:
        return str(token["status"])
    return (
        f"access_denied since {denied.get('since')}, attempt {denied.get('attempts')}, "
        f"next try {denied.get('next_attempt_at')}"
    )


@app.command()
def sync(user_id: UserId, token_id: TokenId, api_url: ApiUrl = DEFAULT_API) -> None:
    """Ask the poller to sync an account now."""
    _call(api_url, "POST", f"/v1/users/{user_id}/tokens/{token_id}/sync")
    console.print("Sync requested; the poller picks it up within its next cycle.")


@app.command()
def reconcile(user_id: UserId, token_id: TokenId, api_url: ApiUrl = DEFAULT_API) -> None:
    """Ask the poller to reconcile an account on its next cycle (list forms updated since its last
    reconciliation) instead of waiting for POLLER__RECONCILE_INTERVAL_SECONDS."""
    _call(api_url, "POST", f"/v1/users/{user_id}/tokens/{token_id}/reconcile")
    console.print(
        "Reconcile requested; the poller runs it on its next cycle "
        f"(its run shows in GET /v1/users/{user_id}/sync-history and `allegro-backup status {user_id}`)."
    )


@app.command()
def resync(
    user_id: UserId,
    token_id: TokenId,
    since: Annotated[datetime, typer.Option(help="Re-read orders updated since (ISO date, UTC if no zone).")],
    source: Annotated[str, typer.Option(help="allegro: list again from Allegro; kafka: replay.")] = "allegro",
    api_url: ApiUrl = DEFAULT_API,
) -> None:
    """Re-read an account's orders since a date, from Allegro or from Kafka."""
    from datetime import UTC

    aware = since if since.tzinfo else since.replace(tzinfo=UTC)
    _call(
        api_url,
        "POST",
        f"/v1/users/{user_id}/tokens/{token_id}/resync",
        json={"source": source, "since": aware.isoformat()},
    )
    console.print(f"Resync from {source} since {aware.isoformat()} requested.")
    if source == "kafka":
        # The CLI is where replays run: do it now rather than wait for `replay --pending`.
        replay(token=UUID(token_id), pending=False, verify=True)


@app.command()
def export(
    user_id: UserId,
    fmt: Annotated[str, typer.Option("--format", help="ndjson or csv")] = "ndjson",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File (default: stdout).")] = None,
    include: Annotated[
        str | None,
        typer.Option(help="Order records to add, comma separated: shipments, tracking, invoices."),
    ] = None,
    api_url: ApiUrl = DEFAULT_API,
) -> None:
    """Export every order of a user, streamed (with `--include`, its shipments, tracking, invoices)."""
    api = _api(api_url)
    sink = output.open("wb") if output else sys.stdout.buffer
    params = {"format": fmt, **({"include": include} if include else {})}
    try:
        for chunk in api.stream_lines(f"/v1/users/{user_id}/orders/export", params):
            sink.write(chunk)
    except ServiceApiError as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    finally:
        api.close()
        if output:
            sink.close()


@app.command()
def replay(
    token: Annotated[UUID | None, typer.Option(help="Only this token (default: all).")] = None,
    pending: Annotated[
        bool, typer.Option(help="Replay every token with a resync-from-Kafka request.")
    ] = False,
    verify: Annotated[
        bool, typer.Option(help="Print a checksum of the token's rows (every column) before and after.")
    ] = True,
    drop_first: Annotated[
        bool,
        typer.Option(
            "--drop-first",
            help="Delete the token's stored orders, revisions and order records before the rebuild "
            "(needs --token).",
        ),
    ] = False,
) -> None:
    """Rebuild orders, revisions and order records in PostgreSQL from the Kafka topics, with progress.

    With a token, the checksums of its `orders`, `order_revisions`, `order_records` and
    `order_record_versions` rows before and after are printed:
    a replay into emptied tables that gives back what the worker wrote shows the same figures. With
    --drop-first the token's rows are deleted first, in their own transaction, so the rebuild is exactly
    what Kafka holds (rows Kafka no longer has are gone). Until the replay has written them, the API shows
    fewer orders for that seller; the worker may go on storing new snapshots meanwhile, which is harmless
    (the newest version wins either way).
    """
    if drop_first and token is None:
        errors.print("[red]--drop-first deletes one seller's rows: give --token[/red]")
        raise typer.Exit(2)
    settings = get_settings()
    configure_logging("WARNING", json_logs=False)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        tasks: dict[str, TaskID] = {}

        def on_progress(topic: str, done: int, total: int) -> None:
            if topic not in tasks:
                tasks[topic] = progress.add_task(topic, total=total)
            progress.update(tasks[topic], completed=done)

        with services_answer("replay (Kafka and PostgreSQL)"):
            results = asyncio.run(
                _replay(settings, token, pending, verify, on_progress, drop_first=drop_first)
            )
    for token_id, report, before, after in results:
        scope = f"token {token_id}" if token_id else "every token"
        console.print(
            f"{scope}: {report.revisions_read} revisions, {report.orders_read} order changes and "
            f"{report.records_read} order records replayed "
            f"({report.orders_written} orders written, {report.skipped_invalid} invalid skipped)"
        )
        if after:
            console.print(f"checksum before: {before}")
            console.print(f"checksum after:  {after}")


async def _replay(
    settings: Settings,
    token: UUID | None,
    pending: bool,
    verify: bool,
    progress: Any,
    *,
    drop_first: bool = False,
) -> list[tuple[UUID | None, Any, str, str]]:
    from cli.replay import replay as run_replay
    from db.engine import create_engine
    from db.queries.order_records import delete_token_records, driver_connection, records_checksum
    from db.queries.replay import (
        clear_kafka_resync,
        delete_token_orders,
        pending_kafka_resyncs,
    )
    from db.queries.replay import token_checksum as orders_checksum

    engine = create_engine(settings.database)

    async def token_checksum(connection: Any, token_id: UUID) -> str:
        # orders and revisions, then the order records (shipments, tracking, invoices)
        rows = await orders_checksum(connection, token_id)
        return f"{rows} {await records_checksum(await driver_connection(connection), token_id)}"

    try:
        if pending:
            async with engine.connect() as connection:
                tokens: list[UUID | None] = list(await pending_kafka_resyncs(connection))
        else:
            tokens = [token]
        results = []
        befores: dict[UUID, str] = {}
        if verify:
            # taken before anything is dropped: the figure to compare the rebuild with
            async with engine.connect() as connection:
                for token_id in tokens:
                    if token_id is not None:
                        befores[token_id] = await token_checksum(connection, token_id)
        if drop_first and token is not None:
            async with engine.begin() as connection:
                orders, revisions = await delete_token_orders(connection, token)
                await delete_token_records(await driver_connection(connection), token)
            console.print(
                f"token {token}: deleted {orders} orders and {revisions} revisions (and its order records)"
                " before the rebuild"
            )
        for token_id in tokens:
            before = befores.get(token_id, "") if token_id is not None else ""
            after = ""
            report = await run_replay(engine, settings.kafka, token_id=token_id, progress=progress)
            if token_id is not None:
                async with engine.begin() as connection:
                    await clear_kafka_resync(connection, token_id)
                    after = await token_checksum(connection, token_id) if verify else ""
            results.append((token_id, report, before, after))
        return results
    finally:
        await engine.dispose()


@app.command()
def quiet(
    wait: Annotated[float, typer.Option(help="Keep checking for up to this many seconds.")] = 0.0,
) -> None:
    """Exit 0 when the pipeline is quiet: tokens caught up, no run in flight, the worker's lag zero."""
    from cli.quiet import reasons_not_quiet

    settings = get_settings()
    configure_logging("WARNING", json_logs=False)
    deadline = time.monotonic() + wait
    while True:
        with services_answer("checking quiet (PostgreSQL and Kafka)"):
            reasons = asyncio.run(reasons_not_quiet(settings))
        if not reasons or time.monotonic() >= deadline:
            break
        time.sleep(1)
    if reasons:
        for reason in reasons:
            console.print(f"not quiet: {reason}")
        raise typer.Exit(1)
    console.print("quiet: every active token is caught up and the worker has stored everything")


@app.command("rotate-keys")
def rotate_keys() -> None:
    """Re-seal every stored Allegro token with the first key of CRYPTO__KEYS (run after adding a key)."""
    # The poller owns the token rows' secrets; its command does the work, with the same settings.
    raise typer.Exit(subprocess.call([sys.executable, "-m", "producers", "rotate-keys"]))


@app.command()
def watch(
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest change kept.")] = False,
) -> None:
    """Print order changes from allegro.orders as they happen (Ctrl-C to stop)."""
    from cli.watch import watch_changes

    settings = get_settings()
    try:
        with services_answer(f"watching {settings.kafka.orders_topic} (Kafka)"):
            asyncio.run(watch_changes(settings.kafka, from_beginning, console))
    except KeyboardInterrupt:
        pass


@app.command()
def migrate() -> None:
    """Apply the database migrations."""
    from db.migrate import upgrade

    with services_answer("migrating (PostgreSQL)"):
        upgrade(get_settings().database.url.get_secret_value())
    console.print("Database schema is up to date.")


@app.command()
def topics() -> None:
    """Create the Kafka topics; report existing ones whose config differs."""
    from core.topics import bootstrap

    with services_answer("creating topics (Kafka)"):
        report = asyncio.run(bootstrap(get_settings().kafka))
    console.print(f"created: {report.created or '-'}; unchanged: {len(report.unchanged)}")
    for name, differences in report.differing.items():
        errors.print(f"[yellow]{name} differs:[/yellow] {'; '.join(differences)}")
    if report.differing:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
