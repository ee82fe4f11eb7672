"""Request bodies of the control API (`/_sim/...`)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewSeller(_Body):
    """`POST /_sim/sellers`."""

    login: str | None = Field(default=None, min_length=1, max_length=64)
    seller_id: str | None = Field(default=None, pattern=r"^[0-9]{1,20}$")


class DeviceApproval(_Body):
    """`POST /_sim/device/approve`."""

    user_code: str
    seller_id: str


class DeviceDenial(_Body):
    """`POST /_sim/device/deny`."""

    user_code: str


class NewOrders(_Body):
    """`POST /_sim/sellers/{seller_id}/orders`."""

    count: int = Field(ge=0, le=500_000)
    days_back: float = Field(default=330, ge=0, le=3650)
    with_events: bool = True


class Mutation(_Body):
    """`POST /_sim/sellers/{seller_id}/orders/{id}/mutate`."""

    status: str | None = None
    fulfillment_status: str | None = None
    buyer_edit: bool = False


class RandomMutations(_Body):
    """`POST /_sim/sellers/{seller_id}/mutate-random`."""

    count: int = Field(ge=0, le=100_000)


class MergeRequest(_Body):
    """`POST /_sim/sellers/{seller_id}/merge`."""

    ids: list[str] = Field(min_length=2)


class TrickleRequest(_Body):
    """`POST /_sim/sellers/{seller_id}/trickle`."""

    new_per_s: float = Field(default=0.0, ge=0, le=10_000)
    changes_per_s: float = Field(default=0.0, ge=0, le=10_000)


class PurgeRequest(_Body):
    """`POST /_sim/purge`."""

    before: datetime


class SellerRef(_Body):
    """`POST /_sim/tokens/revoke` and `/expire`."""

    seller_id: str


class NotFoundFault(_Body):
    """`POST /_sim/faults/not-found`: the form's detail GET answers 404 for the next `requests` requests
    and until `seconds` have passed (whichever lasts longer)."""

    id: str
    requests: int = Field(default=0, ge=0)
    seconds: float = Field(default=0.0, ge=0, le=86_400)


class ImportedForm(_Body):
    """`POST /_sim/sellers/{seller_id}/forms`: a checkout form served verbatim, and the events to journal."""

    form: dict[str, Any]
    events: list[str] = Field(default_factory=list)
