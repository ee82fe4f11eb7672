"""One token's sync runs: bootstrap, backfill, journal, reconcile and resync, each a recorded sync run.

Delivery: every page's snapshots are acknowledged by Kafka before the cursor or the backfill position
is written; a crash in between re-reads the page (the processor dedupes by revision).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from allegro_api import CheckoutFormPage, FormSnapshot, OrderEvent
from core.contract import SnapshotEnvelope, SnapshotSource, SyncKind
from core.logging import log_context
from core.settings import PollerSettings
from db.queries import form_retries, token_sync
from db.queries.form_retries import MissingForm
from db.queries.token_sync import StoredOrder, TokenState
from producers.access import AllegroAccess, TokenAccess, current_request_counter
from producers.fetching import FetchResult, fetch_forms
from producers.metrics import PollerMetrics
from producers.missing import MissingForms
from producers.publisher import PollerPublisher
from producers.records import OrderRecords
from producers.runs import SyncRun
from producers.snapshots import TokenIdentity, form_envelope
from producers.windows import WalkPosition, bought_at_key, updated_at_key, walk_windows

log = logging.getLogger(__name__)

EVENT_RETENTION = timedelta(days=60)
# Forms this worker published lately, so a duplicate event does not refetch before the processor stores them
# (usually well under a second later; older ones are found in `orders`). Per token, so it is kept small:
# with thousands of tokens it is most of the poller's memory (docs/PERFORMANCE.md).
RECENT_LIMIT = 1_000
LISTED_LIMIT = 5_000
MAX_EVENT_IDS = 100
# Stored forms a walk may put on the retry list per window (or per reconcile, past the horizon).
VANISHED_PER_WINDOW = 1_000


@dataclass(frozen=True)
class SyncContext:
    """What every token's sync shares in one process."""

    access: AllegroAccess
    publisher: PollerPublisher
    settings: PollerSettings
    metrics: PollerMetrics

    # Reads and one-statement writes of every poll (see create_autocommit_session_factory).
    autocommit: async_sessionmaker[AsyncSession]

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The database session factory, for writes that must be atomic."""
        return self.access.sessions


class TokenSync:
    """The sync runs of one active token."""

    def __init__(self, context: SyncContext, state: TokenState, token: TokenAccess) -> None:
        self._ctx = context
        self._token = token
        self.identity = TokenIdentity(state.id, state.user_id, state.seller_id or "")
        self._recent: dict[str, StoredOrder] = {}
        # Forms listed during the current journal run, reused by its later event pages.
        self._listed: dict[str, FormSnapshot] = {}
        self._missing = MissingForms(
            access=context.access,
            token=token,
            identity=self.identity,
            settings=context.settings,
            autocommit=context.autocommit,
            publish=self._publish,
        )
        self._records = OrderRecords(
            access=context.access,
            token=token,
            identity=self.identity,
            settings=context.settings,
            autocommit=context.autocommit,
            publisher=context.publisher,
            metrics=context.metrics,
        )

    async def refresh_if_expiring(self, now: datetime) -> None:
        """Renew the access token ahead of its expiry."""
        await self._token.refresh_if_expiring(now)

    # --- runs -------------------------------------------------------------------------------------

    async def bootstrap(self, *, reason: str | None) -> None:
        """Store the newest event id as the cursor and plan a backfill, in one write (nothing between)."""
        stats = await self._token.call(
            lambda token: self._ctx.access.client.event_stats(
                access_token=token, governor_key=self.identity.token_id
            )
        )
        cursor = stats.latest_event.id if stats.latest_event else None
        now = datetime.now(UTC)
        position = WalkPosition.new(now - timedelta(days=self._ctx.settings.backfill_days), now)
        progress: dict[str, Any] = {"walk": position.to_json(), "reason": reason}
        async with self._ctx.sessions() as session, session.begin():
            await token_sync.start_backfill(
                session, self.identity.token_id, cursor=cursor, progress=progress, now=now
            )
            if reason:
                await token_sync.record_sync_outcome(session, self.identity.token_id, at=now, error=reason)
        log.info("cursor bootstrapped at %s; backfill planned", cursor, extra={"reason": reason})

    async def backfill(self, state: TokenState) -> None:
        """Walk the last 12 months by purchase time, resuming from the saved position."""
        progress = dict(state.backfill_progress or {})
        position = WalkPosition.from_json(progress["walk"])

        async def body(run: SyncRun) -> None:
            run.note = progress.get("reason")
            # A first backfill fills an empty account: asking which forms of each page are stored would
            # cost a query per page and find none. A resumed or repeated one (the cursor expired) asks.
            async with self._ctx.autocommit() as session:
                skip_stored = await token_sync.has_orders(session, self.identity.token_id)

            async def save(pos: WalkPosition) -> None:
                done_at = datetime.now(UTC) if pos.finished else None
                async with self._ctx.autocommit() as session:  # one statement
                    await token_sync.save_backfill_progress(
                        session,
                        self.identity.token_id,
                        progress={**progress, "walk": pos.to_json()},
                        completed_at=done_at,
                    )
                await run.maybe_report_progress()

            await walk_windows(
                position,
                self._list_by("lineItems.boughtAt"),
                lambda forms: self._publish_forms(forms, run, "backfill", skip_stored=skip_stored),
                save,
                key=bought_at_key,
                on_window=self._vanished_noter("backfill") if skip_stored else None,
            )

        await self._run("backfill", body, cursor=state.event_cursor)

    async def journal(self, state: TokenState, *, write_when_quiet: bool = True) -> int:
        """Read events after the cursor until a short page; publish what changed, then move the cursor.

        Returns the number of events read. A quiet read (no event, nothing retried) is no sync run: it
        publishes no record, and writes nothing unless `write_when_quiet` (the caller keeps its time;
        `db.queries.token_polls`). A run that reads events records `started` at its first event page.
        """
        limit = self._ctx.settings.events_page_limit

        async def body(run: SyncRun) -> None:
            cursor = state.event_cursor
            self._listed = {}
            while True:
                events = await self._read_events(cursor, limit)
                run.events_read += len(events)
                newest: datetime | None = None
                if events:
                    await run.start()
                    await self._handle_events(events, run)
                    cursor = max(events, key=_event_order).id
                    newest = max(event.occurred_at for event in events)
                    self._ctx.metrics.journal_lag.labels(token_id=str(self.identity.token_id)).set(
                        (datetime.now(UTC) - newest).total_seconds()
                    )
                last_page = len(events) < limit
                if run.events_read or write_when_quiet:
                    # Kafka has acknowledged the page's snapshots: only now may the cursor move past it.
                    # The last page's write also records the run's success: one statement, committed
                    # as it runs (an autocommit session).
                    async with self._ctx.autocommit() as session:
                        await token_sync.advance_cursor(
                            session,
                            self.identity.token_id,
                            cursor=cursor,
                            last_event_at=newest,
                            now=datetime.now(UTC),
                            succeeded=last_page,
                        )
                run.cursor_to = cursor
                if last_page:
                    # Forms that answered 404 earlier and are due again: minutes, not the next reconcile.
                    await self._missing.retry_due(run)
                    # Shipments, invoices and tracking that are due (producers.records).
                    await self._records.read_due(run)
                    return

        run = await self._run(
            "journal", body, cursor=state.event_cursor, body_records_success=True, only_work=True
        )
        return run.events_read

    async def reconcile(self, state: TokenState) -> None:
        """List forms updated since the last reconciliation (with overlap); publish new revisions."""
        now = datetime.now(UTC)
        since = (state.last_reconcile_at or now) - timedelta(
            seconds=self._ctx.settings.reconcile_overlap_seconds
        )

        async def body(run: SyncRun) -> None:
            await walk_windows(
                WalkPosition.new(since, now),
                self._list_by("updatedAt"),
                lambda forms: self._publish_forms(forms, run, "reconcile", skip_stored=True),
                lambda _pos: run.maybe_report_progress(),
                key=updated_at_key,
            )
            # Stored orders past the purchase horizon the backfill covers get no events and leave the list
            # when Allegro purges them: put them to the test of a detail GET.
            await self._vanished_noter("reconcile")(
                None, now - timedelta(days=self._ctx.settings.backfill_days), set()
            )
            async with self._ctx.sessions() as session, session.begin():
                await token_sync.save_reconcile_time(session, self.identity.token_id, at=now)

        await self._run("reconcile", body, cursor=state.event_cursor)

    async def resync(self, state: TokenState) -> None:
        """Re-publish every form bought since the requested date, stored or not; then clear the request."""
        now = datetime.now(UTC)
        since = state.resync_since or now - timedelta(days=self._ctx.settings.backfill_days)
        requested_at = state.resync_requested_at or now

        async def body(run: SyncRun) -> None:
            await walk_windows(
                WalkPosition.new(since, now),
                self._list_by("lineItems.boughtAt"),
                lambda forms: self._publish_forms(forms, run, "resync", skip_stored=False),
                lambda _pos: run.maybe_report_progress(),
                key=bought_at_key,
                on_window=self._vanished_noter("resync"),
            )
            async with self._ctx.sessions() as session, session.begin():
                await token_sync.clear_resync_request(
                    session, self.identity.token_id, requested_at=requested_at
                )

        await self._run("resync", body, cursor=state.event_cursor)

    # --- pieces -----------------------------------------------------------------------------------

    def _vanished_noter(
        self, source: SnapshotSource
    ) -> Callable[[datetime | None, datetime, set[str]], Awaitable[None]]:
        """What a walk does with a complete window: stored, unmarked orders bought in it that the list no
        longer holds go on the retry list, where detail GETs confirm (or not) that they are gone."""

        async def note(start: datetime | None, end: datetime, seen: set[str]) -> None:
            async with self._ctx.autocommit() as session:
                vanished = await form_retries.unmarked_stored_forms(
                    session,
                    self.identity.token_id,
                    self.identity.user_id,
                    bought_from=start,
                    bought_until=end,
                    seen=seen,
                    limit=VANISHED_PER_WINDOW,
                )
            await self._missing.note(vanished, source=source)

        return note

    async def _run(
        self,
        kind: SyncKind,
        body: Callable[[SyncRun], Awaitable[None]],
        *,
        cursor: str | None,
        body_records_success: bool = False,
        only_work: bool = False,
    ) -> SyncRun:
        """Run `body` as a recorded sync run: started, finished or failed (then re-raised).

        The token row gets the outcome; a body that writes its own success with its last write says
        so with `body_records_success`. With `only_work`, the run is recorded only when it did work
        (`SyncRun.did_work`) or failed, and the body reports `started` itself (`SyncRun.start`).
        """
        run = SyncRun(
            self.identity.token_id, self.identity.user_id, kind, self._ctx.publisher, cursor_from=cursor
        )
        run.cursor_to = cursor
        counter_token = current_request_counter.set(run.requests)
        try:
            with log_context(sync_run_id=str(run.id), sync_kind=kind):
                if not only_work:
                    await run.start()
                try:
                    await body(run)
                except asyncio.CancelledError:
                    # Stopped from outside: the run ends `failed` instead of staying `running`.
                    self._ctx.metrics.sync_runs.labels(kind=kind, phase="failed").inc()
                    if run.started or run.did_work:
                        await run.report_cancelled()
                    raise
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    log.warning("%s run failed: %s", kind, error)
                    self._ctx.metrics.sync_runs.labels(kind=kind, phase="failed").inc()
                    await run.report("failed", error=error)
                    await self._record_outcome(error)
                    raise
                if only_work and not (run.started or run.did_work):
                    self._ctx.metrics.sync_runs.labels(kind=kind, phase="quiet").inc()
                    return run
                self._ctx.metrics.sync_runs.labels(kind=kind, phase="finished").inc()
                await run.report("finished")
                if not body_records_success:
                    await self._record_outcome(None)
                log.info(
                    "%s run finished",
                    kind,
                    extra={
                        "events_read": run.events_read,
                        "fetched": run.orders_fetched,
                        "changed": run.orders_changed,
                        "requests": run.requests.count,
                    },
                )
                return run
        finally:
            current_request_counter.reset(counter_token)

    async def _read_events(self, cursor: str | None, limit: int) -> list[OrderEvent]:
        """One page of the journal after `cursor`."""
        client, key = self._ctx.access.client, self.identity.token_id
        return await self._token.call(
            lambda token: client.events(access_token=token, from_id=cursor, limit=limit, governor_key=key)
        )

    async def _record_outcome(self, error: str | None) -> None:
        async with self._ctx.sessions() as session, session.begin():
            await token_sync.record_sync_outcome(
                session, self.identity.token_id, at=datetime.now(UTC), error=error
            )

    def _list_by(self, field: str) -> Callable[[int, int, datetime, datetime], Awaitable[CheckoutFormPage]]:
        """A list call over a window of `field`, sorted ascending on it (stable offsets)."""
        client, key = self._ctx.access.client, self.identity.token_id

        async def list_page(offset: int, limit: int, start: datetime, end: datetime) -> CheckoutFormPage:
            if field == "updatedAt":
                return await self._token.call(
                    lambda token: client.checkout_forms(
                        offset,
                        limit,
                        access_token=token,
                        governor_key=key,
                        updated_at_gte=start,
                        updated_at_lte=end,
                        sort="updatedAt",
                    )
                )
            return await self._token.call(
                lambda token: client.checkout_forms(
                    offset,
                    limit,
                    access_token=token,
                    governor_key=key,
                    bought_at_gte=start,
                    bought_at_lte=end,
                    sort="lineItems.boughtAt",
                )
            )

        return list_page

    async def _handle_events(self, events: Sequence[OrderEvent], run: SyncRun) -> None:
        """Fetch the forms whose newest event shows a revision we do not have, and publish them."""
        latest: dict[str, OrderEvent] = {}
        event_ids: dict[str, list[str]] = {}
        for event in sorted(events, key=_event_order):
            form_id = event.checkout_form_id
            if form_id is None:
                continue
            latest[form_id] = event
            event_ids.setdefault(form_id, []).append(event.id)
        stored = await self._stored(latest)
        wanted = [
            form_id
            for form_id, event in latest.items()
            if not self._have(form_id, event.checkout_form_revision, event.occurred_at, stored)
        ]
        if not wanted:
            return
        client, key = self._ctx.access.client, self.identity.token_id

        async def list_between(since: datetime, until: datetime, offset: int, limit: int) -> CheckoutFormPage:
            return await self._token.call(
                lambda token: client.checkout_forms(
                    offset,
                    limit,
                    access_token=token,
                    governor_key=key,
                    updated_at_gte=since,
                    updated_at_lte=until,
                    sort="-updatedAt",
                )
            )

        async def fetch_one(form_id: str) -> FormSnapshot:
            return await self._token.call(
                lambda token: client.checkout_form(form_id, access_token=token, governor_key=key)
            )

        reusable = {
            form_id: self._listed[form_id]
            for form_id in wanted
            if form_id in self._listed and _covers(self._listed[form_id], latest[form_id])
        }
        for form_id in reusable:
            del self._listed[form_id]
        to_fetch = [form_id for form_id in wanted if form_id not in reusable]
        changed = [latest[form_id].occurred_at for form_id in to_fetch]
        result = (
            await fetch_forms(to_fetch, (min(changed), max(changed)), list_between, fetch_one)
            if to_fetch
            else FetchResult()
        )
        # Keep only what later pages may still ask for, and a bounded amount of it: a long catch-up would
        # otherwise hold every form it listed (a miss only costs a fetch).
        self._listed.update((k, v) for k, v in result.listed.items() if k not in result.forms)
        while len(self._listed) > LISTED_LIMIT:
            del self._listed[next(iter(self._listed))]
        result.forms.update(reusable)
        now = datetime.now(UTC)
        envelopes: list[SnapshotEnvelope] = []
        for form_id in wanted:
            snapshot = result.forms.get(form_id)
            if snapshot is not None and not self._have(form_id, snapshot.revision, None, stored):
                envelopes.append(self._envelope(snapshot, "journal", run, now, event_ids[form_id]))
        # A 404 is evidence, not a verdict: the form goes on the retry list (producers.missing).
        await self._missing.note(
            [
                MissingForm(
                    form_id,
                    _known_bought_at(stored.get(form_id)) or _event_bought_at(latest[form_id]),
                    _event_line_items(latest[form_id]),
                    event_ids[form_id][-MAX_EVENT_IDS:],
                )
                for form_id in sorted(result.gone)
            ],
            source="journal",
        )
        run.orders_fetched += len(result.forms)
        self._ctx.metrics.orders_fetched.labels(source="journal").inc(len(result.forms))
        await self._records.note(list(result.forms.values()), source="journal")
        await self._publish(envelopes, run, "journal")

    async def _publish_forms(
        self, forms: Sequence[FormSnapshot], run: SyncRun, source: SnapshotSource, *, skip_stored: bool
    ) -> None:
        """Publish a list page's forms (those with a new revision unless `skip_stored` is off)."""
        stored = await self._stored(form.id for form in forms) if skip_stored else {}
        now = datetime.now(UTC)
        envelopes = [
            self._envelope(form, source, run, now, ())
            for form in forms
            if not (skip_stored and self._have(form.id, form.revision, None, stored))
        ]
        run.orders_fetched += len(forms)
        self._ctx.metrics.orders_fetched.labels(source=source).inc(len(forms))
        await self._records.note(forms, source=source)
        await self._publish(envelopes, run, source)

    async def _publish(self, envelopes: list[SnapshotEnvelope], run: SyncRun, source: SnapshotSource) -> None:
        """Publish and wait for every acknowledgement, then remember what was sent."""
        await self._ctx.publisher.publish_snapshots(envelopes)
        run.orders_changed += len(envelopes)
        self._ctx.metrics.orders_published.labels(source=source).inc(len(envelopes))
        for envelope in envelopes:
            if envelope.revision is not None:
                self._remember(
                    envelope.checkout_form_id,
                    StoredOrder(envelope.revision, envelope.updated_at, envelope.bought_at),
                )

    def _envelope(
        self,
        snapshot: FormSnapshot,
        source: SnapshotSource,
        run: SyncRun,
        now: datetime,
        event_ids: Sequence[str],
    ) -> SnapshotEnvelope:
        return form_envelope(
            self.identity,
            snapshot,
            source=source,
            sync_run_id=run.id,
            fetched_at=now,
            event_ids=list(event_ids)[-MAX_EVENT_IDS:],
        )

    async def _stored(self, form_ids: Iterable[str]) -> dict[str, StoredOrder]:
        async with self._ctx.autocommit() as session:
            return await token_sync.stored_orders(session, self.identity.token_id, form_ids)

    def _have(
        self, form_id: str, revision: str | None, changed_at: datetime | None, stored: dict[str, StoredOrder]
    ) -> bool:
        """True when the stored (or just published) state is this revision, or newer than the change."""
        for known in (stored.get(form_id), self._recent.get(form_id)):
            if known is None:
                continue
            if revision is not None and known.revision == revision:
                return True
            # An event older than the stored form's last change reports a revision we are already past.
            if changed_at is not None and known.updated_at is not None and known.updated_at > changed_at:
                return True
        return False

    def _remember(self, form_id: str, state: StoredOrder) -> None:
        self._recent.pop(form_id, None)
        self._recent[form_id] = state
        if len(self._recent) > RECENT_LIMIT:
            self._recent.pop(next(iter(self._recent)))


def _event_order(event: OrderEvent) -> tuple[int, str]:
    """Events ordered by id (µs publication time), which is the journal's own order."""
    return (int(event.id), event.id) if event.id.isdigit() else (0, event.id)


def _covers(snapshot: FormSnapshot, event: OrderEvent) -> bool:
    """True when a form listed earlier in the run is at (or past) the state the event reports."""
    if event.checkout_form_revision is not None and snapshot.revision == event.checkout_form_revision:
        return True
    return snapshot.updated_at is not None and snapshot.updated_at > event.occurred_at


def _known_bought_at(known: StoredOrder | None) -> datetime | None:
    return known.bought_at if known else None


def _event_line_items(event: OrderEvent) -> list[str]:
    """The line item ids an event shows (what a merge's successor would share)."""
    items = event.order.line_items if event.order else []
    return [item.id for item in items if item.id]


def _event_bought_at(event: OrderEvent) -> datetime | None:
    """The latest line-item purchase time an event shows."""
    items = event.order.line_items if event.order else []
    times = [item.bought_at for item in items if item.bought_at is not None]
    return max(times) if times else None


def cursor_expired(state: TokenState, now: datetime) -> bool:
    """True when events after the cursor may already be gone (60-day retention) and nobody read them."""
    if state.event_cursor is None or not state.event_cursor.isdigit():
        return False
    cursor_time = datetime.fromtimestamp(int(state.event_cursor) / 1_000_000, tz=UTC)
    confirmed = state.cursor_updated_at or cursor_time
    # A quiet seller's cursor is old but complete: only a journal not read for 60 days has a gap.
    return now - cursor_time > EVENT_RETENTION and now - confirmed > EVENT_RETENTION
