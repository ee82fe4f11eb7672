"""One token's order records: which orders' shipments and invoices to read, and which waybills to track.

When (Allegro gives no event for a new parcel, a tracking status or an invoice; the order's state is the
only hint, reference/allegro/openapi-order-records.yaml and `allegro_api.records`):
- a form the poller publishes (journal, backfill, resync) whose record fingerprint (fulfilment status,
  `lineItemsSent`, `invoice.required`) moved, or is seen for the first time, puts the order on the
  check list (`order_record_checks`); a reconcile or a resync puts every listed order with records on
  it again;
- at the end of each journal run the due checks are read: the shipments of an order that may have
  parcels, the invoices of that order or of a paid one that asked for an invoice (one or two requests).
  An order shipped without a shipment yet, or asking for an invoice it does not have yet, is checked
  again every `records_recheck_seconds` for `records_follow_days`;
- every waybill a shipments answer names goes on `pending_waybills` and its tracking is read (one request
  per carrier and 20 waybills) every `tracking_interval_seconds` until a final status (DELIVERED,
  RETURNED), or for `records_follow_days` at most.

Delivery, as for forms: only records whose content differs from the stored one are published, every
request goes through the shared budget (the client's governor, keyed by token) with the client's retries,
and a list entry moves (checked, rescheduled, removed) only after Kafka acknowledged what its read
published. A crash in between reads it again; the worker keeps one version per distinct content.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from allegro_api import FormSnapshot, NotFound, UnexpectedResponse
from allegro_api.records import OrderInvoices, OrderShipments, ParcelTracking
from core.contract import SnapshotSource
from core.order_records import OrderRecordMessage, RecordKind, tracking_key
from core.sending import Record
from core.settings import PollerSettings
from db.queries import record_checks
from db.queries.order_records import FINAL_CODES
from db.queries.record_checks import DueCheck, DueWaybill
from producers.access import AllegroAccess, TokenAccess
from producers.metrics import PollerMetrics
from producers.publisher import PollerPublisher
from producers.runs import SyncRun
from producers.snapshots import TokenIdentity

log = logging.getLogger(__name__)

DUE_PER_RUN = 400
WAYBILLS_PER_RUN = 400
CONCURRENCY = 8
# Allegro limits GET /order/checkout-forms/{id}/shipments to 50 requests per second per client id (the
# spec's description, reference/allegro/openapi-order-records.yaml); a 429 there would pause the whole
# client id (`allegro_api.client`), so calls are spaced below it.
SHIPMENTS_PER_SECOND = 40.0
# Runs that read every listed order's records again, whatever its fingerprint: a reconcile, and a resync
# (the owner asked for everything again).
FORCING = frozenset({"reconcile", "resync"})
# Fulfilment states in which a parcel may exist (Allegro's fulfillment.status values).
SHIPPING_STATES = frozenset({"READY_FOR_SHIPMENT", "READY_FOR_PICKUP", "SENT", "PICKED_UP", "RETURNED"})


def fingerprint(snapshot: FormSnapshot) -> str | None:
    """`{fulfillment status}|{lineItemsSent}|{invoice asked}` of a form whose records are worth reading:
    it may have parcels, or it is paid and asked for an invoice (a seller invoices a paid order); None
    for one that has nothing to read yet."""
    facts = snapshot.facts
    fulfillment = facts.columns.get("fulfillment_status")
    shipping = fulfillment in SHIPPING_STATES or facts.line_items_sent in ("SOME", "ALL")
    invoice_asked = facts.invoice_required and facts.columns.get("status") == "READY_FOR_PROCESSING"
    if not shipping and not invoice_asked:
        return None
    return f"{fulfillment or ''}|{facts.line_items_sent or ''}|{int(invoice_asked)}"


def _expects(fingerprint_text: str) -> tuple[bool, bool]:
    """(may have parcels, asked for an invoice) from a stored fingerprint."""
    status, sent, invoice = [*fingerprint_text.split("|"), "", "", ""][:3]
    return status in SHIPPING_STATES or sent in ("SOME", "ALL"), invoice == "1"


class Pace:
    """Spaces calls to one Allegro resource evenly at `per_second` (times this process's share of the
    client id's budget); a call reserves its slot before it waits, so concurrent callers queue fairly."""

    def __init__(self, per_second: float, share: Callable[[], float]) -> None:
        self._per_second = per_second
        self._share = share
        self._next = 0.0

    async def wait(self) -> None:
        """Return at this caller's slot."""
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + 1.0 / max(0.1, self._per_second * self._share())
        if slot > now:
            await asyncio.sleep(slot - now)


_PACES: weakref.WeakKeyDictionary[object, Pace] = weakref.WeakKeyDictionary()


def pace_for(governor: object) -> Pace:
    """The shipments pace of the process that owns `governor` (one per budget, shared by its tokens)."""
    pace = _PACES.get(governor)
    if pace is None:
        pace = _PACES[governor] = Pace(SHIPMENTS_PER_SECOND, lambda: float(getattr(governor, "share", 1.0)))
    return pace


def _digest(message: OrderRecordMessage) -> bytes:
    return bytes.fromhex(message.content_sha256)


class OrderRecords:
    """Notes, reads and tracks the records of one token's orders."""

    def __init__(
        self,
        *,
        access: AllegroAccess,
        token: TokenAccess,
        identity: TokenIdentity,
        settings: PollerSettings,
        autocommit: async_sessionmaker[AsyncSession],
        publisher: PollerPublisher,
        metrics: PollerMetrics | None = None,
    ) -> None:
        self._access = access
        self._token = token
        self._identity = identity
        self._settings = settings
        self._autocommit = autocommit
        self._publisher = publisher
        self._metrics = metrics
        # When the next read is due, so a quiet journal poll costs no query; None with _known: nothing.
        self._due_at: datetime | None = None
        self._known = False

    async def note(self, forms: Sequence[FormSnapshot], *, source: SnapshotSource) -> None:
        """Put forms whose record fingerprint moved on the check list (a reconcile or a resync: every one
        with records). Called before the forms are published, so a crash cannot lose the hint."""
        if not self._settings.records_enabled:
            return
        prints = {form.id: text for form in forms if (text := fingerprint(form)) is not None}
        if not prints:
            return
        now = datetime.now(UTC)
        async with self._autocommit() as session:
            await record_checks.note_forms(
                session, self._identity.token_id, prints, reason=source, now=now, force=source in FORCING
            )
        self._due_at = now if self._due_at is None else min(self._due_at, now)

    async def read_due(self, run: SyncRun) -> None:
        """Read the records of due orders and the tracking of due waybills; publish what changed."""
        if not self._settings.records_enabled:
            return
        now = datetime.now(UTC)
        if self._known and (self._due_at is None or now < self._due_at):
            return
        try:
            async with self._autocommit() as session:
                checks = await record_checks.due_checks(
                    session, self._identity.token_id, now=now, limit=DUE_PER_RUN
                )
            await self._gather([functools.partial(self._check, check, run) for check in checks])
            async with self._autocommit() as session:
                waybills = await record_checks.due_waybills(
                    session, self._identity.token_id, now=datetime.now(UTC), limit=WAYBILLS_PER_RUN
                )
            await self._track(waybills, run)
        finally:
            async with self._autocommit() as session:
                self._due_at = await record_checks.next_due(session, self._identity.token_id)
            self._known = True

    @staticmethod
    async def _gather(calls: Sequence[Callable[[], Awaitable[None]]]) -> None:
        """Run the calls, CONCURRENCY at a time; every outcome is collected, then the first error raised
        (a call is started only once it has a slot, so a cancellation leaves none half-made)."""
        limiter = asyncio.Semaphore(CONCURRENCY)

        async def limited(call: Callable[[], Awaitable[None]]) -> None:
            async with limiter:
                await call()

        outcomes = await asyncio.gather(*(limited(call) for call in calls), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    def _message(
        self, form_id: str, kind: RecordKind, key: str, document: bytes, run: SyncRun, now: datetime
    ) -> OrderRecordMessage | None:
        """The record's message; None (logged) for one the contract refuses (an id or key of a shape
        Allegro does not use), which would otherwise fail every run."""
        try:
            return self._build(form_id, kind, key, document, run, now)
        except ValidationError as exc:
            log.warning(
                "order %s: %s record %r not published: %s", form_id, kind, key, exc.errors()[0]["msg"]
            )
            return None

    def _build(
        self, form_id: str, kind: RecordKind, key: str, document: bytes, run: SyncRun, now: datetime
    ) -> OrderRecordMessage:
        return OrderRecordMessage.of(
            token_id=self._identity.token_id,
            user_id=self._identity.user_id,
            seller_id=self._identity.seller_id,
            checkout_form_id=form_id,
            kind=kind,
            record_key=key,
            document=document.decode(),
            fetched_at=now,
            source=run.kind,
            sync_run_id=run.id,
        )

    async def _check(self, check: DueCheck, run: SyncRun) -> None:
        """Read one order's shipments (a shipping order) and invoices (a shipping order, or a paid one
        that asked for an invoice), publish what changed, then move its entry."""
        client, key, form_id = self._access.client, self._identity.token_id, check.checkout_form_id
        shipping, invoice_asked = _expects(check.fingerprint)
        pace = pace_for(self._access.governor)
        shipments: OrderShipments | None = None
        invoices: OrderInvoices | None = None

        async def read_shipments(token: str) -> OrderShipments:
            await pace.wait()  # Allegro's own limit on this resource (see SHIPMENTS_PER_SECOND)
            return await client.shipments(form_id, access_token=token, governor_key=key)

        try:
            if shipping:
                shipments = await self._token.call(read_shipments)
            if shipping or invoice_asked:
                invoices = await self._token.call(
                    lambda token: client.invoices(form_id, access_token=token, governor_key=key)
                )
        except NotFound:
            # Purged or merged away (the form's own retry list decides which): nothing more to read.
            async with self._autocommit() as session:
                await record_checks.checked(session, key, form_id, now=datetime.now(UTC), next_due=None)
            return
        except UnexpectedResponse as exc:
            log.warning("order %s: unreadable records answer (%s); checked again later", form_id, exc)
            await self._reschedule(check, datetime.now(UTC))
            return
        now = datetime.now(UTC)
        async with self._autocommit() as session:
            stored, final = await record_checks.stored_state(session, key, form_id)
        answers: list[tuple[RecordKind, bytes]] = []
        if shipments is not None:
            answers.append(("shipments", shipments.raw))
        if invoices is not None:
            answers.append(("invoices", invoices.raw))
        messages = [m for kind, raw in answers if (m := self._message(form_id, kind, "", raw, run, now))]
        await self._publish([m for m in messages if stored.get((m.kind, "")) != _digest(m)])
        waybills = [
            (s.model.carrier_id, s.model.waybill)
            for s in (shipments.shipments if shipments is not None else ())
            if s.model.carrier_id and s.model.waybill
        ]
        missing = (shipping and not waybills) or (
            invoice_asked and invoices is not None and not invoices.invoices
        )
        follow_until = check.noted_at + timedelta(days=self._settings.records_follow_days)
        next_due = None
        if missing and now < follow_until:
            next_due = now + timedelta(seconds=self._settings.records_recheck_seconds)
        async with self._access.sessions() as session, session.begin():
            await record_checks.follow_waybills(
                session,
                key,
                form_id,
                waybills,
                now=now,
                finished=final,
            )
            await record_checks.checked(session, key, form_id, now=now, next_due=next_due)

    async def _reschedule(self, check: DueCheck, now: datetime) -> None:
        async with self._autocommit() as session:
            await record_checks.checked(
                session,
                self._identity.token_id,
                check.checkout_form_id,
                now=now,
                next_due=now + timedelta(seconds=self._settings.records_recheck_seconds),
            )

    async def _track(self, due: Sequence[DueWaybill], run: SyncRun) -> None:
        """Read the tracking of due waybills, per carrier; publish what changed, then move the list."""
        if not due:
            return
        by_carrier: dict[str, list[DueWaybill]] = {}
        for entry in due:
            by_carrier.setdefault(entry.carrier_id, []).append(entry)
        client, key = self._access.client, self._identity.token_id
        found: dict[tuple[str, str], ParcelTracking] = {}

        async def read(carrier_id: str, entries: list[DueWaybill]) -> None:
            waybills = [entry.waybill for entry in entries]
            items = await self._token.call(
                lambda token: client.tracking(carrier_id, waybills, access_token=token, governor_key=key)
            )
            found.update(((carrier_id, item.waybill), item) for item in items)

        await self._gather(
            [functools.partial(read, carrier, entries) for carrier, entries in by_carrier.items()]
        )
        now = datetime.now(UTC)
        messages: list[OrderRecordMessage] = []
        done: list[DueWaybill] = []
        later: list[DueWaybill] = []
        async with self._autocommit() as session:  # one statement for every waybill read
            stored = await record_checks.tracking_hashes(
                session,
                key,
                [(e.checkout_form_id, tracking_key(e.carrier_id, e.waybill)) for e in due],
            )
        for entry in due:
            item = found.get((entry.carrier_id, entry.waybill))
            if item is not None:
                record_key = tracking_key(entry.carrier_id, entry.waybill)
                message = self._message(entry.checkout_form_id, "tracking", record_key, item.raw, run, now)
                if message is not None and stored.get((entry.checkout_form_id, record_key)) != _digest(
                    message
                ):
                    messages.append(message)
            final = item is not None and bool(item.statuses) and item.statuses[-1].code in FINAL_CODES
            given_up = now - entry.added_at > timedelta(days=self._settings.records_follow_days)
            (done if final or given_up else later).append(entry)
        await self._publish(messages)
        async with self._access.sessions() as session, session.begin():
            await record_checks.waybills_read(
                session,
                key,
                done=done,
                later=later,
                next_at=now + timedelta(seconds=self._settings.tracking_interval_seconds),
            )

    async def _publish(self, messages: Sequence[OrderRecordMessage]) -> None:
        """Send and wait for every acknowledgement."""
        if messages:
            await self._publisher.publish_records(
                [Record(m.key.encode(), m.encode(), route=m.route.encode()) for m in messages]
            )
            if self._metrics is not None:
                for message in messages:
                    self._metrics.records_published.labels(kind=message.kind).inc()
