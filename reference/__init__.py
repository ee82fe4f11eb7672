"""Reference material the tests, benchmarks and demos read, carried in the repository.

Sources (copied unmodified; see README.md beside this file):
- `allegro/`: Allegro's REST API notes, the official OpenAPI subsets (developer.allegro.pl swagger.yaml,
  mirrored 2026-07-18) and four real sandbox responses of `GET /order/checkout-forms`;
- `field-cases/`: inputs from Allegro behaviour that integrators reported in public, with the right outcome;
- `schemas/compose-spec.json`: the official Compose Specification JSON schema.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
ALLEGRO = ROOT / "allegro"
ALLEGRO_SAMPLES = ALLEGRO / "samples"
FIELD_CASES = ROOT / "field-cases"
COMPOSE_SCHEMA = ROOT / "schemas" / "compose-spec.json"
