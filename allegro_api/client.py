"""The typed async client of Allegro's order endpoints; the caller owns tokens and passes one per call.

Retries: only idempotent GETs, only for transient failures (`allegro_api.retrying.classify`: 5xx,
408, HTML gateway pages, timeouts and connection errors), with exponential backoff and full jitter. A
429 is raised at once as RateLimited and never slept on here: Allegro blocks the whole client id, so
the governor (when one is given) is paused for every key and the caller reschedules its work. A 401
is raised as AccessTokenExpired: the caller refreshes, serialised per token, and calls again. Error
texts never carry the access token of the call (`allegro_api.errors.error_from_response`).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Hashable, Iterable
from datetime import UTC, datetime
from typing import TypedDict, Unpack
from urllib.parse import quote

import httpx

from allegro_api.checkout_forms import CheckoutFormPage, FormSnapshot
from allegro_api.errors import ClientSideLimitError, RateLimited, Unavailable, error_from_response
from allegro_api.events import EventStats, OrderEvent, parse_event_page, parse_event_stats
from allegro_api.governor import RateGovernor
from allegro_api.profile import AccountProfile
from allegro_api.record_calls import OrderRecordCalls
from allegro_api.retrying import retry_transient

ACCEPT = "application/vnd.allegro.public.v1+json"
# Allegro answers 422 when offset + limit passes 10,000; deeper lists need narrower boughtAt windows.
MAX_LIST_DEPTH = 10_000
MAX_FORMS_PAGE = 100
MAX_EVENTS_PAGE = 1000

logger = logging.getLogger(__name__)

# (endpoint template, outcome: status code or "timeout"/"connection", seconds) for request metrics.
ResponseObserver = Callable[[str, str, float], None]


class CheckoutFormFilters(TypedDict, total=False):
    """Filters and sort of `GET /order/checkout-forms`, as Python names."""

    status: str
    fulfillment_status: str
    fulfillment_provider: str
    line_items_sent: str
    bought_at_gte: datetime
    bought_at_lte: datetime
    updated_at_gte: datetime
    updated_at_lte: datetime
    payment_id: str
    surcharge_id: str
    delivery_method_id: str
    buyer_login: str
    marketplace_id: str
    sort: str


_FILTER_PARAMS: dict[str, str] = {
    "status": "status",
    "fulfillment_status": "fulfillment.status",
    "fulfillment_provider": "fulfillment.provider.id",
    "line_items_sent": "fulfillment.shipmentSummary.lineItemsSent",
    "bought_at_gte": "lineItems.boughtAt.gte",
    "bought_at_lte": "lineItems.boughtAt.lte",
    "updated_at_gte": "updatedAt.gte",
    "updated_at_lte": "updatedAt.lte",
    "payment_id": "payment.id",
    "surcharge_id": "surcharges.id",
    "delivery_method_id": "delivery.method.id",
    "buyer_login": "buyer.login",
    "marketplace_id": "marketplace.id",
    "sort": "sort",
}


def format_datetime(value: datetime) -> str:
    """UTC ISO-8601 with milliseconds and Z, as Allegro writes times; naive datetimes are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timezone-aware datetime required")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def checkout_form_params(offset: int, limit: int, filters: CheckoutFormFilters) -> list[tuple[str, str]]:
    """Query parameters of a checkout-form list call, refusing what Allegro would reject with 422."""
    if not 1 <= limit <= MAX_FORMS_PAGE:
        raise ClientSideLimitError(f"limit must be 1..{MAX_FORMS_PAGE}", offset=offset, limit=limit)
    if offset < 0 or offset + limit > MAX_LIST_DEPTH:
        raise ClientSideLimitError(
            f"offset + limit must stay within 0..{MAX_LIST_DEPTH}; split the boughtAt window",
            offset=offset,
            limit=limit,
        )
    params = [("offset", str(offset)), ("limit", str(limit))]
    for name, value in filters.items():
        wire_name = _FILTER_PARAMS.get(name)
        if wire_name is None:
            raise TypeError(f"unknown checkout-form filter {name!r}")
        params.append((wire_name, format_datetime(value) if isinstance(value, datetime) else str(value)))
    return params


# Path ids templated for metric labels and logs: a label per endpoint, not per order or carrier.
_PATH_IDS = (
    (re.compile(r"^/order/checkout-forms/[^/]+"), "/order/checkout-forms/{id}"),
    (re.compile(r"^/order/carriers/[^/]+"), "/order/carriers/{carrierId}"),
)


def endpoint_label(path: str) -> str:
    """The path with its ids templated: `/order/checkout-forms/{id}/shipments`,
    `/order/carriers/{carrierId}/tracking`; paths without ids unchanged."""
    if not path.startswith(("/order/checkout-forms/", "/order/carriers/")):
        return path  # the journal's and the lists' paths: nothing to template
    for pattern, template in _PATH_IDS:
        path = pattern.sub(template, path)
    return path


# Parsed request URLs kept: a seller's journal URL stays the same from poll to poll until its cursor
# moves, and httpx parses a URL in more CPU than the rest of a quiet poll's request takes.
URL_CACHE_SIZE = 16_384


@functools.lru_cache(maxsize=URL_CACHE_SIZE)
def request_url(base: str, path: str, params: tuple[tuple[str, str], ...]) -> httpx.URL:
    """`base` + `path` with `params` as its query, parsed once per distinct URL (least recently used
    ones forgotten past `URL_CACHE_SIZE`)."""
    return httpx.URL(f"{base}{path}", params=params)


class AllegroClient(OrderRecordCalls):
    """Order events, checkout forms and (`OrderRecordCalls`) order records; one instance per process over
    one shared httpx.AsyncClient (`allegro_api.http.allegro_http_client`)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_url: str,
        user_agent: str,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        governor: RateGovernor | None = None,
        observer: ResponseObserver | None = None,
    ) -> None:
        self._http = http
        self._api_url = api_url.rstrip("/")
        self._user_agent = user_agent
        self._max_retries = max(0, max_retries)
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._governor = governor
        self._observer = observer

    async def event_stats(self, *, access_token: str, governor_key: Hashable | None = None) -> EventStats:
        """The newest event id: store it as the cursor before a first backfill."""
        response = await self._get("/order/event-stats", [], access_token, governor_key)
        return parse_event_stats(response.content)

    async def events(
        self,
        *,
        access_token: str,
        from_id: str | None = None,
        types: Iterable[str] = (),
        limit: int = MAX_EVENTS_PAGE,
        governor_key: Hashable | None = None,
    ) -> list[OrderEvent]:
        """One page of events after `from_id` (exclusive), oldest first."""
        if not 1 <= limit <= MAX_EVENTS_PAGE:
            raise ClientSideLimitError(f"limit must be 1..{MAX_EVENTS_PAGE}", offset=0, limit=limit)
        params = [("limit", str(limit))]
        if from_id is not None:
            params.append(("from", from_id))
        params.extend(("type", event_type) for event_type in types)
        response = await self._get("/order/events", params, access_token, governor_key)
        return parse_event_page(response.content).events

    async def checkout_forms(
        self,
        offset: int = 0,
        limit: int = MAX_FORMS_PAGE,
        *,
        access_token: str,
        governor_key: Hashable | None = None,
        **filters: Unpack[CheckoutFormFilters],
    ) -> CheckoutFormPage:
        """One page of checkout forms; each form keeps its raw JSON."""
        params = checkout_form_params(offset, limit, filters)
        response = await self._get("/order/checkout-forms", params, access_token, governor_key)
        return CheckoutFormPage.from_json(response.content, offset=offset, limit=limit)

    async def checkout_form(
        self, form_id: str, *, access_token: str, governor_key: Hashable | None = None
    ) -> FormSnapshot:
        """One checkout form by id (case-sensitive); NotFound when purged or merged away."""
        response = await self._get(
            f"/order/checkout-forms/{quote(form_id, safe='')}", [], access_token, governor_key
        )
        return FormSnapshot.from_json(response.content)

    async def me(self, *, access_token: str, governor_key: Hashable | None = None) -> AccountProfile:
        """The linked account's id and login (`GET /me`)."""
        response = await self._get("/me", [], access_token, governor_key)
        return AccountProfile.from_json(response.content)

    async def _get(
        self, path: str, params: list[tuple[str, str]], access_token: str, governor_key: Hashable | None
    ) -> httpx.Response:
        """GET with retries for transient failures; any non-2xx answer becomes an AllegroError."""
        endpoint = endpoint_label(path)
        headers = {
            "Accept": ACCEPT,
            "Authorization": f"Bearer {access_token}",
            "User-Agent": self._user_agent,
        }
        return await retry_transient(
            lambda: self._send_once(endpoint, path, params, headers, governor_key, access_token),
            what=f"GET {endpoint}",
            max_retries=self._max_retries,
            backoff_base=self._backoff_base,
            backoff_cap=self._backoff_cap,
        )

    async def _send_once(
        self,
        endpoint: str,
        path: str,
        params: list[tuple[str, str]],
        headers: dict[str, str],
        governor_key: Hashable | None,
        access_token: str,
    ) -> httpx.Response:
        """One governed request; transport failures become Unavailable, and error texts lose the token."""
        if self._governor is not None and governor_key is not None:
            await self._governor.acquire(governor_key)
        started = time.monotonic()
        try:
            url = request_url(self._api_url, path, tuple(params))
            response = await self._http.get(url, headers=headers)
        except httpx.TimeoutException as exc:
            self._observe(endpoint, "timeout", started)
            raise Unavailable(f"timeout on GET {endpoint}") from exc
        except httpx.TransportError as exc:
            self._observe(endpoint, "connection", started)
            raise Unavailable(f"connection error on GET {endpoint}: {type(exc).__name__}") from exc
        self._observe(endpoint, str(response.status_code), started)
        if response.is_success:
            return response
        error = error_from_response(response, secrets=(access_token,))
        if isinstance(error, RateLimited) and self._governor is not None:
            # Allegro blocks the whole client id, so every key waits, not just this caller.
            self._governor.pause_for(error.pause_seconds)
        raise error

    def _observe(self, endpoint: str, outcome: str, started: float) -> None:
        """Report one request to the metrics observer, if any."""
        if self._observer is not None:
            self._observer(endpoint, outcome, time.monotonic() - started)
