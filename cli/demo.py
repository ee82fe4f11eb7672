"""`allegro-backup up`: the whole pipeline on one machine, against the simulator, with a demo seller.

Order of things: stack (Kafka + PostgreSQL) → migrations → topics → simulator with a demo seller →
processor, poller, API → link the seller through the real device flow (the demo approves the code itself
through the simulator's control API, the same change as the simulator's approval page, unless asked to
wait for a person to approve it there) → backfill progress → where to look. Ctrl-C stops every process
this command started.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.processes import ProcessGroup, wait_for_port
from cli.service_api import ServiceApi, ServiceApiError
from core.settings import Settings
from core.states import TokenStatus
from core.topics import bootstrap
from db.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class DemoOptions:
    """What the demo runs and how big it is."""

    user_id: str = "demo-user"
    orders: int = 5000
    new_per_s: float = 2.0
    changes_per_s: float = 1.0
    simulator_port: int = 8080
    api_port: int = 8000
    start_stack: bool = True
    # Wait for a person to approve the code on the simulator's page instead of approving it here.
    approve_in_browser: bool = False


def run_demo(settings: Settings, options: DemoOptions, console: Console) -> None:
    """Start everything, link the demo seller, show progress, and wait for Ctrl-C."""
    stack_started_here = False
    if options.start_stack:
        stack_started_here = _stack("status", quiet=True) != 0
        if _stack("up") != 0:
            raise RuntimeError("the local stack did not start; see the messages above")
    group = ProcessGroup(ROOT / ".stack" / "logs")
    # Ctrl-C, and a plain `kill` too, end the run through the same clean stop. (A shell that starts this
    # in the background leaves SIGINT ignored; restore Python's handler.)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        _run(settings, options, console, group)
    except KeyboardInterrupt:
        console.print("\n[bold]Stopping…[/bold]")
    finally:
        group.stop_all()
        if stack_started_here:
            if _stack("down") == 0:
                console.print("Every process is stopped, Kafka and PostgreSQL too.")
            else:
                console.print("[red]The stack did not stop cleanly:[/red] see `scripts/stack status`.")
        elif options.start_stack:
            console.print(
                "Every process started here is stopped; Kafka and PostgreSQL were running before and "
                "are left running (`scripts/stack down` stops them)."
            )
        else:
            console.print("Every process started here is stopped.")


def _run(settings: Settings, options: DemoOptions, console: Console, group: ProcessGroup) -> None:
    database_url = settings.database.url.get_secret_value()
    console.print("[bold]Migrating the database…[/bold]")
    upgrade(database_url)
    report = asyncio.run(bootstrap(settings.kafka))
    console.print(f"Topics: {len(report.created)} created, {len(report.unchanged)} already in place.")
    if report.differing:
        console.print(f"[yellow]Topics that differ from the contract:[/yellow] {report.differing}")

    sim_url = f"http://127.0.0.1:{options.simulator_port}"
    api_url = f"http://127.0.0.1:{options.api_port}"
    env = {
        "ALLEGRO__AUTH_URL": sim_url,
        "ALLEGRO__API_URL": sim_url,
        "API__PORT": str(options.api_port),
    }
    # A snappier demo than production's cadence, unless the environment or .env chose one.
    demo_cadence = {"journal_interval_seconds": "2", "link_poll_seconds": "1"}
    for field, value in demo_cadence.items():
        if field not in settings.poller.model_fields_set:
            env[f"POLLER__{field.upper()}"] = value
    simulator = group.start(
        "simulator",
        [
            "simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(options.simulator_port),
            "--seed",
            "1",
            "--device-interval",
            "1",
            "--log-level",
            "warning",
        ],
        env,
    )
    wait_for_port("127.0.0.1", options.simulator_port, 30, simulator)
    sim = httpx.Client(base_url=sim_url, timeout=120)
    seller = sim.post("/_sim/sellers", json={"login": "demo-seller"}).raise_for_status().json()
    console.print(f"Simulator on {sim_url}: demo seller {seller['login']} ({seller['seller_id']}).")
    with console.status(f"Generating {options.orders} orders of the last 11 months…"):
        sim.post(
            f"/_sim/sellers/{seller['seller_id']}/orders", json={"count": options.orders, "days_back": 330}
        ).raise_for_status()

    group.start("processor", ["processors", "worker"], env)
    group.start("poller", ["producers"], env)
    api = group.start("api", ["api"], env)
    wait_for_port("127.0.0.1", options.api_port, 60, api)
    key = settings.api.keys.get_secret_value().split(",")[0]
    service = ServiceApi(api_url, key)

    console.print(
        f"[bold]Linking[/bold] the demo seller for user {options.user_id!r} through the device flow…"
    )
    link = service.request("POST", f"/v1/users/{options.user_id}/tokens")
    token_id = link["token_id"]
    where = link["verification_uri_complete"] or link["verification_uri"]
    page = f"  user code [bold]{link['user_code']}[/bold]: the approval page is {where}"
    console.print(page, soft_wrap=True)
    if options.approve_in_browser:
        console.print(
            f"  open that page in a browser, choose {seller['login']} and approve; waiting up to 10 min…"
        )
        token_id = _wait_active(service, options.user_id, token_id, console, within=600)
    else:
        # A person would open that page, pick the seller and approve; the demo gives that answer itself so
        # it runs unattended, through the same state change as the page's Approve button.
        sim.post(
            "/_sim/device/approve", json={"user_code": link["user_code"], "seller_id": seller["seller_id"]}
        ).raise_for_status()
        console.print(
            f"  approved for {seller['login']} by the demo itself (POST /_sim/device/approve); "
            "`--approve-in-browser` waits for you to approve it on that page instead"
        )
        token_id = _wait_active(service, options.user_id, token_id, console)
    sim.post(
        f"/_sim/sellers/{seller['seller_id']}/trickle",
        json={"new_per_s": options.new_per_s, "changes_per_s": options.changes_per_s},
    ).raise_for_status()

    _show_backfill(service, options, token_id, console, group)
    console.print(
        "\n[bold green]The pipeline runs.[/bold green] New orders and changes keep arriving.\n"
        f"  API docs:      {api_url}/docs\n"
        f"  orders:        curl -H 'Authorization: Bearer {key}' \\\n"
        f"                   '{api_url}/v1/users/{options.user_id}/orders?limit=5'\n"
        f"  parcels:       curl -H 'Authorization: Bearer {key}' \\\n"
        f"                   '{api_url}/v1/users/{options.user_id}/orders?undelivered_after_days=2&limit=5'\n"
        "                 (then GET …/orders/{id}?include=shipments,tracking,invoices)\n"
        f"  token status:  .venv/bin/allegro-backup status {options.user_id}\n"
        f"  change stream: .venv/bin/allegro-backup watch   (consumes {settings.kafka.orders_topic})\n"
        f"  logs:          {group.log_dir}/\n"
        "Ctrl-C stops everything."
    )
    while True:
        dead = group.dead()
        if dead:
            names = ", ".join(c.name for c in dead)
            raise RuntimeError(f"{names} stopped unexpectedly; logs in {group.log_dir}/")
        time.sleep(1)


def _wait_active(
    service: ServiceApi, user_id: str, token_id: str, console: Console, within: float = 120
) -> str:
    """The id of the token that holds the link once approved: this one, or the earlier token of the same
    seller that a relink continues (a second `make run` goes on with the first run's backup)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        token = service.request("GET", f"/v1/users/{user_id}/tokens/{token_id}")
        if token["status"] == TokenStatus.ACTIVE:
            console.print(f"  linked: seller {token.get('seller_id')} is [green]active[/green]")
            return token_id
        if token["status"] == TokenStatus.RELINKED:
            holder = str(token["relinked_to"])
            console.print(
                f"  relinked: seller {token.get('seller_id')} was linked before; its backup goes on "
                f"as token {holder}"
            )
            return holder
        if token["status"] != TokenStatus.PENDING:
            raise RuntimeError(f"linking ended as {token['status']}")
        time.sleep(1)
    raise TimeoutError(f"the link did not become active within {within:.0f} s")


def _show_backfill(
    service: ServiceApi, options: DemoOptions, token_id: str, console: Console, group: ProcessGroup
) -> None:
    columns = (TextColumn("Backfill"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("backfill", total=options.orders)
        while True:
            if group.dead():
                return
            try:
                token = service.request("GET", f"/v1/users/{options.user_id}/tokens/{token_id}")
            except ServiceApiError as exc:
                # The API answers 503 while PostgreSQL is away (an outage drill): wait, do not abort.
                progress.console.print(f"  waiting: {exc}")
                time.sleep(2)
                continue
            stored = int(token["orders_stored"])
            progress.update(task, completed=min(stored, options.orders))
            if stored >= options.orders:
                return
            time.sleep(1)


def _stack(command: str, quiet: bool = False) -> int:
    output = subprocess.DEVNULL if quiet else None
    return subprocess.call([str(ROOT / "scripts" / "stack"), command], stdout=output, stderr=output)  # noqa: S603
