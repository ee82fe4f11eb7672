"""FastAPI dependencies: the simulator state, and the authenticated seller of a REST request."""

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from simulator.guard import admit
from simulator.responses import rest_error
from simulator.state import SimulatorState
from simulator.store import Seller


def get_state(request: Request) -> SimulatorState:
    """The simulator state owned by the app."""
    state: SimulatorState = request.app.state.sim
    return state


StateDep = Annotated[SimulatorState, Depends(get_state)]


async def current_seller(request: Request, state: StateDep) -> Seller:
    """Admit the request through the REST gate and return the token's seller."""
    token = await admit(request, state)
    seller = state.book.sellers.get(token.seller_id)
    if seller is None:
        raise rest_error(403, "AUTHENTICATION_ERROR", "Unknown seller")
    return seller


SellerDep = Annotated[Seller, Depends(current_seller)]
