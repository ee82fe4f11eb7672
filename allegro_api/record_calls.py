"""The order-record calls of `AllegroClient`: shipments, invoices, carriers and parcel tracking.

A mixin over the client's governed, retried GET (`AllegroClient._get`): the same retries, rate governor,
metrics and error mapping as the order calls. Source of the paths and limits:
reference/allegro/openapi-order-records.yaml (see `allegro_api.records`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import quote

from allegro_api.records import (
    CarrierList,
    OrderInvoices,
    OrderShipments,
    ParcelTracking,
    parse_tracking,
    waybill_batches,
)

if TYPE_CHECKING:
    import httpx


class OrderRecordCalls:
    """Calls that read an order's records; each raises what `AllegroClient._get` raises (NotFound for a
    purged or merged order, RateLimited, AccessTokenExpired, Unavailable...) or UnexpectedResponse."""

    async def _get(
        self, path: str, params: list[tuple[str, str]], access_token: str, governor_key: Hashable | None
    ) -> httpx.Response:
        raise NotImplementedError

    async def shipments(
        self, form_id: str, *, access_token: str, governor_key: Hashable | None = None
    ) -> OrderShipments:
        """Waybills assigned to an order; NotFound when the order is purged or merged away."""
        path = f"/order/checkout-forms/{quote(form_id, safe='')}/shipments"
        return OrderShipments.from_json((await self._get(path, [], access_token, governor_key)).content)

    async def invoices(
        self, form_id: str, *, access_token: str, governor_key: Hashable | None = None
    ) -> OrderInvoices:
        """Invoices attached to an order (details only; Allegro has no download of the file)."""
        path = f"/order/checkout-forms/{quote(form_id, safe='')}/invoices"
        return OrderInvoices.from_json((await self._get(path, [], access_token, governor_key)).content)

    async def carriers(self, *, access_token: str, governor_key: Hashable | None = None) -> CarrierList:
        """Every carrier id a waybill can name."""
        response = await self._get("/order/carriers", [], access_token, governor_key)
        return CarrierList.from_json(response.content)

    async def tracking(
        self,
        carrier_id: str,
        waybills: Iterable[str],
        *,
        access_token: str,
        governor_key: Hashable | None = None,
    ) -> list[ParcelTracking]:
        """Tracking of distinct waybills of one carrier, in calls of at most 20 (Allegro's limit);
        one item per waybill in the order asked, none (and no call) for no waybills."""
        path = f"/order/carriers/{quote(carrier_id, safe='')}/tracking"
        found: list[ParcelTracking] = []
        for batch in waybill_batches(list(waybills)):
            params = [("waybill", waybill) for waybill in batch]
            found.extend(parse_tracking((await self._get(path, params, access_token, governor_key)).content))
        return found
