"""Typed async client of Allegro's REST API: device flow, order events, checkout forms, order records
(shipments, invoices, carriers, parcel tracking), rate governor."""

from allegro_api.auth import (
    AllegroAuth,
    Denied,
    DevicePollOutcome,
    Granted,
    InvalidCode,
    Pending,
    SlowDown,
)
from allegro_api.checkout_forms import CheckoutForm, CheckoutFormPage, FormFacts, FormSnapshot
from allegro_api.client import AllegroClient, CheckoutFormFilters, format_datetime
from allegro_api.errors import (
    AccessTokenExpired,
    AllegroError,
    AuthError,
    ClientAuthFailed,
    ClientSideLimitError,
    Forbidden,
    InvalidGrant,
    NeedsReauth,
    NotAcceptable,
    NotFound,
    RateLimited,
    Unavailable,
    UnexpectedResponse,
    ValidationFailed,
)
from allegro_api.events import EventStats, LatestEvent, OrderEvent
from allegro_api.governor import GovernorStats, RateGovernor
from allegro_api.profile import AccountProfile
from allegro_api.records import (
    Carrier,
    CarrierList,
    Invoice,
    OrderInvoices,
    OrderShipments,
    ParcelTracking,
    RawRecord,
    Shipment,
    TrackingStatus,
)
from allegro_api.tokens import DeviceAuthorization, TokenPair

__all__ = [
    "AccessTokenExpired",
    "AccountProfile",
    "AllegroAuth",
    "AllegroClient",
    "AllegroError",
    "AuthError",
    "Carrier",
    "CarrierList",
    "CheckoutForm",
    "CheckoutFormFilters",
    "CheckoutFormPage",
    "ClientAuthFailed",
    "ClientSideLimitError",
    "Denied",
    "DeviceAuthorization",
    "DevicePollOutcome",
    "EventStats",
    "Forbidden",
    "FormFacts",
    "FormSnapshot",
    "GovernorStats",
    "Granted",
    "InvalidCode",
    "InvalidGrant",
    "Invoice",
    "LatestEvent",
    "NeedsReauth",
    "NotAcceptable",
    "NotFound",
    "OrderEvent",
    "OrderInvoices",
    "OrderShipments",
    "ParcelTracking",
    "Pending",
    "RateGovernor",
    "RateLimited",
    "RawRecord",
    "Shipment",
    "SlowDown",
    "TokenPair",
    "TrackingStatus",
    "Unavailable",
    "UnexpectedResponse",
    "ValidationFailed",
    "format_datetime",
]
