"""Identifier factories driven by the seeded generator, so a seed reproduces every id."""

import random
import uuid

# 100 ns ticks between 1582-10-15 and 1970-01-01 (the version-1 UUID epoch).
_UUID_EPOCH_OFFSET_TICKS = 0x01B21DD213814000
# Ticks of 2025-01-01, so ids look like the ones Allegro issues today (time_hi 0x1f0...).
_BASE_TICKS = _UUID_EPOCH_OFFSET_TICKS + 1_735_689_600 * 10_000_000


class IdFactory:
    """Makes lowercase time-based (version 1 layout) UUIDs, revisions and numeric ids from one rng."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def node(self) -> tuple[int, int]:
        """A (clock_seq, node) pair; ids sharing it look minted by the same host, as Allegro's do."""
        return self._rng.getrandbits(14), self._rng.getrandbits(48)

    def time_ticks(self) -> int:
        """A random 60-bit timestamp within a couple of years after 2025-01-01."""
        return _BASE_TICKS + self._rng.getrandbits(49)

    def uuid1(self, ticks: int | None = None, node: tuple[int, int] | None = None) -> str:
        """A version-1 layout UUID string; random parts come from the seeded rng."""
        ticks = self.time_ticks() if ticks is None else ticks
        clock_seq, node_bits = self.node() if node is None else node
        value = uuid.UUID(
            fields=(
                ticks & 0xFFFFFFFF,
                (ticks >> 32) & 0xFFFF,
                ((ticks >> 48) & 0x0FFF) | 0x1000,
                ((clock_seq >> 8) & 0x3F) | 0x80,
                clock_seq & 0xFF,
                node_bits,
            )
        )
        return str(value)

    def revision(self) -> str:
        """Eight lowercase hex characters."""
        return f"{self._rng.getrandbits(32):08x}"

    def digits(self, length: int) -> str:
        """A numeric string of `length` digits without a leading zero."""
        return str(self._rng.randrange(10 ** (length - 1), 10**length))
