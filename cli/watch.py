"""`allegro-backup watch`: follow `allegro.orders` like a downstream consumer would."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from rich.console import Console

from core.contract import ContractError, OrderChange, decode_order_change
from core.settings import KafkaSettings


def change_line(change: OrderChange) -> str:
    """One line for a change: time, kind, whose order (user id, token id's first 8 hex digits), which
    order and its revision, status, fulfillment status and total."""
    total = f" {change.total_amount} {change.currency}" if change.total_amount is not None else ""
    return (
        f"{change.captured_at:%H:%M:%S} {change.change:<10} user {change.user_id} "
        f"token {change.token_id.hex[:8]} {change.checkout_form_id} rev {change.revision} "
        f"{change.status or '-'} {change.fulfillment_status or '-'}{total}"
    )


async def watch_changes(kafka: KafkaSettings, from_beginning: bool, console: Console) -> None:
    """Print one line per order change until interrupted."""
    consumer = AIOKafkaConsumer(
        kafka.orders_topic,
        bootstrap_servers=kafka.bootstrap_servers,
        client_id=f"{kafka.client_id}-watch",
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        max_partition_fetch_bytes=kafka.max_message_bytes,
    )
    await consumer.start()
    console.print(f"Following {kafka.orders_topic} on {kafka.bootstrap_servers} (Ctrl-C to stop)…")
    try:
        async for message in consumer:
            try:
                change = decode_order_change(message.value)
            except ContractError as exc:
                console.print(f"[red]invalid message at offset {message.offset}: {exc}[/red]")
                continue
            console.print(change_line(change), markup=False, highlight=False)
    finally:
        await consumer.stop()
