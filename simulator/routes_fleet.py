"""Control API for fleets: thousands of linked sellers in one call, and purchases across many sellers.

A platform with many sellers is built here without a device flow per seller: `POST /_sim/fleet`
creates the sellers and answers a token pair for each, exactly what the token endpoint answers after
an approved device flow (the tokens work on the public API, refresh included). `POST /_sim/live-orders`
makes one purchase now for each seller given, with its BOUGHT event, as the trickle does.
"""

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from simulator.clock import iso_ms
from simulator.deps import StateDep
from simulator.routes_control import answer, seller_or_404

router = APIRouter(prefix="/_sim")

DEFAULT_SCOPE = ("allegro:api:orders:read", "allegro:api:profile:read")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FleetRequest(_Body):
    """`POST /_sim/fleet`."""

    count: int = Field(ge=1, le=50_000)
    login_prefix: str = Field(default="fleet", min_length=1, max_length=32)
    orders_per_seller: int = Field(default=0, ge=0, le=1_000)
    days_back: float = Field(default=30, ge=0, le=3650)


class LiveOrders(_Body):
    """`POST /_sim/live-orders`."""

    seller_ids: list[str] = Field(min_length=1, max_length=10_000)


@router.post("/fleet")
async def create_fleet(body: FleetRequest, state: StateDep) -> Response:
    """`count` new sellers, each with `orders_per_seller` orders over `days_back` days, linked: answers
    `{"sellers": [{"seller_id", "login", "access_token", "refresh_token", "expires_in", "scope"}]}`."""
    sellers = []
    for index in range(body.count):
        seller = state.book.add_seller(f"{body.login_prefix}_{index}", None)
        if body.orders_per_seller:
            state.book.create_orders(seller, body.orders_per_seller, body.days_back, True)
        pair = state.oauth.issue_linked(seller.seller_id, DEFAULT_SCOPE)
        sellers.append(
            {
                "seller_id": seller.seller_id,
                "login": seller.login,
                "access_token": pair["access_token"],
                "refresh_token": pair["refresh_token"],
                "expires_in": pair["expires_in"],
                "scope": pair["scope"],
            }
        )
    return answer({"sellers": sellers})


@router.post("/live-orders")
async def create_live_orders(body: LiveOrders, state: StateDep) -> Response:
    """One purchase now per seller id given (repeats make several): answers
    `{"orders": [{"seller_id", "id", "bought_at"}]}`; 404 for an unknown seller (nothing is made)."""
    sellers = [seller_or_404(state, seller_id) for seller_id in body.seller_ids]
    made = []
    for seller in sellers:
        form_id = state.book.create_live_order(seller)
        record = seller.orders[form_id]
        made.append({"seller_id": seller.seller_id, "id": form_id, "bought_at": iso_ms(record.bought_us)})
    return answer({"orders": made})
