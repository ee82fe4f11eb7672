"""Forms that answered 404: a persistent retry list, confirmation over minutes, and a decision with evidence.

Allegro answers `GET /order/checkout-forms/{id}` with 404 `CheckoutFormNotFoundException` for three
different reasons (reference/allegro/README.md §3.2, field cases transient-404 and not-yet-visible):
- the form is live, and the 404 is a passing fault ("not found at night, available later", #6348, #3130);
- the form is new and not visible yet, although its event already is (#628);
- the form is gone: merged into a new form that holds its line items (#10406, #8898), or purged after
  the 12-month retention (#12597, #9729).
So one 404 decides nothing. The form goes on the retry list (`form_retries`, in PostgreSQL, so a restart
keeps it) and is fetched again after `missing_retry_first_seconds`, each wait twice the last up to
`missing_retry_max_seconds`. When it answers, the form is published (the revision a 404 hid) and the row
closes as `found`. Only when it still answers 404 after `missing_confirm_seconds` and
`missing_confirm_attempts` tries is it decided:
- merged, when another form shares its line items (stored already, or found in the list from its
  purchase time on; that form is published too, so the worker links the two);
- missing upstream (purged) otherwise.
The decision is published as a gone snapshot (`merged` sets `superseded_at`, `purged` sets
`missing_upstream_since`; the worker never deletes) and the row keeps the evidence: how many 404s over
what time, the successor and the line items it shares, or where a successor was looked for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from allegro_api import CheckoutFormPage, FormSnapshot, NotFound
from core.contract import GoneReason, SnapshotEnvelope, SnapshotSource
from core.settings import PollerSettings
from db.queries import form_retries
from db.queries.form_retries import MissingForm, PendingRetry
from producers.access import AllegroAccess, TokenAccess
from producers.runs import SyncRun
from producers.snapshots import TokenIdentity, form_envelope, gone_envelope

log = logging.getLogger(__name__)

DUE_PER_RUN = 200
CONCURRENCY = 8
# A merge's successor holds the merged forms' line items, so it was bought (latest item) no earlier than
# the form itself: the list from that time on is searched this many pages deep.
SUCCESSOR_SCAN_PAGES = 3
SOURCES: dict[str, SnapshotSource] = {
    "journal": "journal",
    "backfill": "backfill",
    "reconcile": "reconcile",
    "resync": "resync",
}

Publish = Callable[[list[SnapshotEnvelope], SyncRun, SnapshotSource], Awaitable[None]]


class MissingForms:
    """One token's forms that answered 404: noted, retried, decided."""

    def __init__(
        self,
        *,
        access: AllegroAccess,
        token: TokenAccess,
        identity: TokenIdentity,
        settings: PollerSettings,
        autocommit: async_sessionmaker[AsyncSession],
        publish: Publish,
    ) -> None:
        self._access = access
        self._token = token
        self._identity = identity
        self._settings = settings
        self._autocommit = autocommit
        self._publish = publish
        # When the next waiting form is due, so a quiet journal poll costs no query for the list; read
        # from PostgreSQL once per owner (the list outlives this process) and after each round.
        self._due_at: datetime | None = None
        self._due_known = False

    @property
    def _token_id(self) -> UUID:
        return self._identity.token_id

    def _wait(self, attempts: int) -> timedelta:
        """How long after its `attempts`-th 404 a form is tried again."""
        first, cap = self._settings.missing_retry_first_seconds, self._settings.missing_retry_max_seconds
        return timedelta(seconds=min(cap, first * 2 ** max(0, attempts - 1)))

    async def note(self, forms: Sequence[MissingForm], *, source: SnapshotSource) -> None:
        """Put forms that just answered 404 on the retry list (never a mark by itself)."""
        if not forms:
            return
        now = datetime.now(UTC)
        first_attempt = now + self._wait(1)
        async with self._autocommit() as session:  # one statement
            await form_retries.note_missing(
                session, self._token_id, forms, source=source, now=now, next_attempt_at=first_attempt
            )
        if self._due_known:
            self._due_at = min(self._due_at or first_attempt, first_attempt)
        log.info(
            "%d forms answered 404: they are tried again before anything is decided",
            len(forms),
            extra={"checkout_form_ids": [form.checkout_form_id for form in forms][:20]},
        )

    async def retry_due(self, run: SyncRun) -> None:
        """GET every waiting form whose time has come; publish those that answer, decide the confirmed."""
        now = datetime.now(UTC)
        if self._due_known and (self._due_at is None or now < self._due_at):
            return
        async with self._autocommit() as session:
            due = await form_retries.due_retries(session, self._token_id, now=now, limit=DUE_PER_RUN)
        try:
            await self._attempt_all(due, run)
        finally:
            async with self._autocommit() as session:
                self._due_at = await form_retries.next_attempt_at(session, self._token_id)
            self._due_known = True

    async def _attempt_all(self, due: Sequence[PendingRetry], run: SyncRun) -> None:
        if not due:
            return
        limiter = asyncio.Semaphore(CONCURRENCY)

        async def attempt(retry: PendingRetry) -> None:
            async with limiter:
                await self._attempt(retry, run)

        outcomes = await asyncio.gather(*(attempt(retry) for retry in due), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _get(self, form_id: str) -> FormSnapshot:
        client, key = self._access.client, self._token_id
        return await self._token.call(
            lambda token: client.checkout_form(form_id, access_token=token, governor_key=key)
        )

    async def _attempt(self, retry: PendingRetry, run: SyncRun) -> None:
        source = SOURCES.get(retry.source, "journal")
        try:
            snapshot = await self._get(retry.checkout_form_id)
        except NotFound:
            await self._missed_again(retry, run, source)
            return
        now = datetime.now(UTC)
        # Published even when stored: it may be the revision the 404 hid, and the worker drops a repeat.
        await self._publish([self._envelope(snapshot, source, run, now, retry.event_ids)], run, source)
        evidence = {"not_found": retry.attempts, "first_missing_at": retry.first_missing_at.isoformat()}
        async with self._autocommit() as session:
            await form_retries.decide(
                session, self._token_id, retry.checkout_form_id, outcome="found", now=now, evidence=evidence
            )
        log.info("form %s answered again after %d 404s", retry.checkout_form_id, retry.attempts)

    async def _missed_again(self, retry: PendingRetry, run: SyncRun, source: SnapshotSource) -> None:
        now = datetime.now(UTC)
        attempts = retry.attempts + 1
        confirmed = (
            now - retry.first_missing_at >= timedelta(seconds=self._settings.missing_confirm_seconds)
            and attempts >= self._settings.missing_confirm_attempts
        )
        if not confirmed:
            async with self._autocommit() as session:
                await form_retries.record_miss(
                    session,
                    self._token_id,
                    retry.checkout_form_id,
                    now=now,
                    next_attempt_at=now + self._wait(attempts),
                )
            return
        evidence: dict[str, Any] = {
            "not_found": attempts,
            "first_missing_at": retry.first_missing_at.isoformat(),
            "last_not_found_at": now.isoformat(),
        }
        items = retry.line_item_ids
        if not items:
            async with self._autocommit() as session:
                items = await form_retries.stored_line_items(session, self._token_id, retry.checkout_form_id)
        evidence["line_item_ids"] = items
        successor, shared, where = await self._find_successor(retry, items, run, source, evidence)
        reason: GoneReason = "merged" if successor else "purged"
        await self._publish(
            [
                gone_envelope(
                    self._identity,
                    retry.checkout_form_id,
                    reason=reason,
                    bought_at=retry.bought_at,
                    source=source,
                    sync_run_id=run.id,
                    fetched_at=now,
                    event_ids=retry.event_ids[-100:],
                )
            ],
            run,
            source,
        )
        if successor:
            evidence |= {"successor_found_in": where, "shared_line_item_ids": shared}
        async with self._autocommit() as session:
            await form_retries.decide(
                session,
                self._token_id,
                retry.checkout_form_id,
                outcome="merged" if successor else "missing",
                now=now,
                successor=successor,
                evidence=evidence,
            )
        log.warning(
            "form %s still answers 404 after %d tries: decided %s",
            retry.checkout_form_id,
            attempts,
            f"merged into {successor}" if successor else "missing upstream",
        )

    async def _find_successor(
        self,
        retry: PendingRetry,
        items: list[str],
        run: SyncRun,
        source: SnapshotSource,
        evidence: dict[str, Any],
    ) -> tuple[str | None, list[str], str]:
        """A form sharing the line items: stored already, else in the list from the form's purchase on.

        Returns (successor id or None, shared line item ids, where it was found)."""
        if not items:
            evidence["successor_search"] = "no line item ids known"
            return None, [], ""
        async with self._autocommit() as session:
            stored = await form_retries.stored_successor(
                session, self._token_id, retry.checkout_form_id, items
            )
        if stored is not None:
            return stored[0], stored[1], "orders"
        if retry.bought_at is None:
            evidence["successor_search"] = "stored orders only (purchase time unknown)"
            return None, [], ""
        wanted = set(items)
        since = retry.bought_at - timedelta(milliseconds=1)
        offset, pages = 0, 0
        for _ in range(SUCCESSOR_SCAN_PAGES):
            pages += 1
            page = await self._token.call(self._list_from(since, offset))
            for form in page.forms:
                shared = sorted(wanted & set(form.facts.line_item_ids))
                if form.id != retry.checkout_form_id and shared:
                    # Stored with it, the worker links the merged form to this one (superseded_by).
                    now = datetime.now(UTC)
                    await self._publish([self._envelope(form, source, run, now, ())], run, source)
                    return form.id, shared, "list"
            if page.next_offset >= page.total_count or not page.forms:
                break
            offset = page.next_offset
        evidence["successor_search"] = f"stored orders and {pages} list pages bought from {since.isoformat()}"
        return None, [], ""

    def _list_from(self, since: datetime, offset: int) -> Callable[[str], Awaitable[CheckoutFormPage]]:
        """A list call for the forms bought at or after `since`, oldest first, from `offset`."""
        client, key = self._access.client, self._token_id

        async def call(token: str) -> CheckoutFormPage:
            return await client.checkout_forms(
                offset,
                100,
                access_token=token,
                governor_key=key,
                bought_at_gte=since,
                sort="lineItems.boughtAt",
            )

        return call

    def _envelope(
        self,
        snapshot: FormSnapshot,
        source: SnapshotSource,
        run: SyncRun,
        now: datetime,
        events: Sequence[str],
    ) -> SnapshotEnvelope:
        return form_envelope(
            self._identity, snapshot, source=source, sync_run_id=run.id, fetched_at=now, event_ids=events
        )
