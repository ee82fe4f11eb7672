"""The pydantic base shared by the Allegro response models."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel

from allegro_api.form_text import decode_object

ItemT = TypeVar("ItemT")


class AllegroModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields kept, never rejected."""

    model_config = ConfigDict(
        extra="allow",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
    )


def _null_to_empty_list(value: Any) -> Any:
    """Allegro sends explicit null for absent arrays; treat it as empty."""
    return [] if value is None else value


NullableList = Annotated[list[ItemT], BeforeValidator(_null_to_empty_list)]


def load_json_object(content: bytes) -> dict[str, Any]:
    """Decode a JSON object body or raise UnexpectedResponse (escaped lone surrogates included:
    `allegro_api.form_text.decode_object`)."""
    return decode_object(content)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector out of a synchronous decode.

    A 100-form page decodes into some 15,000 dicts and lists at once. Collections that run in the middle
    find them all alive, so they promote the whole tree to the oldest generation, and every promotion
    counts towards CPython's trigger for a full collection; the tree then dies by reference counting
    anyway (it holds no cycles). In the poller at a steady 1,000 new orders/s that meant a full
    collection every few pages. Paused, the collector sees only what outlives the decode."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
