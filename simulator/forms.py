"""Generator of realistic checkout forms, shaped like Allegro's responses (explicit nulls included)."""

import random
import unicodedata
from typing import Any

from simulator import catalog
from simulator.catalog import Market
from simulator.clock import MICROS_PER_DAY, MICROS_PER_SECOND, iso_ms, iso_seconds
from simulator.ids import IdFactory

Form = dict[str, Any]
_CASH_ON_DELIVERY_SHARE = 0.09


def money(cents: int, currency: str) -> dict[str, str]:
    """Allegro's Price object: the amount as a decimal string."""
    return {"amount": f"{cents // 100}.{cents % 100:02d}", "currency": currency}


def cents_of(price: dict[str, str]) -> int:
    """The amount of a Price object in hundredths."""
    whole, _, fraction = price["amount"].partition(".")
    return int(whole) * 100 + int((fraction + "00")[:2])


class FormFactory:
    """Builds buyers and new checkout forms from the simulator's seeded rng."""

    def __init__(self, rng: random.Random, ids: IdFactory) -> None:
        self._rng = rng
        self._ids = ids

    def pick_market(self) -> Market:
        """A marketplace, weighted like a Polish seller's sales."""
        return self._rng.choices(catalog.MARKETS, weights=[m.weight for m in catalog.MARKETS])[0]

    def _address(self, country: str) -> tuple[str, str, str]:
        city, zip_code = self._rng.choice(catalog.CITIES[country])
        street = f"{self._rng.choice(catalog.STREETS[country])} {self._rng.randint(1, 120)}"
        if self._rng.random() < 0.4:
            street += f"/{self._rng.randint(1, 40)}"
        return street, city, zip_code

    def _phone(self, market: Market) -> str:
        return f"{market.phone_prefix}{self._rng.randrange(500_000_000, 899_999_999)}"

    def new_buyer(self, market: Market) -> dict[str, Any]:
        """A buyer: a person or a company, sometimes a guest."""
        rng, country = self._rng, market.country
        first, last = rng.choice(catalog.FIRST_NAMES[country]), rng.choice(catalog.LAST_NAMES[country])
        guest = rng.random() < 0.08
        company = rng.choice(catalog.COMPANY_NAMES[country]) if rng.random() < 0.25 else None
        buyer_id = self._ids.digits(9)
        plain = unicodedata.normalize("NFKD", f"{first}_{last}").encode("ascii", "ignore").decode().lower()
        login = f"Client:{buyer_id}" if guest else f"{plain}{rng.randint(1, 999)}"
        local = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10))
        street, city, zip_code = self._address(country)
        return {
            "id": buyer_id,
            "email": f"{local}+{rng.getrandbits(36):09x}@{rng.choice(catalog.EMAIL_DOMAINS)}",
            "login": login,
            "firstName": first,
            "lastName": last,
            "companyName": company,
            "guest": guest,
            "personalIdentity": None,
            "phoneNumber": self._phone(market) if rng.random() < 0.8 else None,
            "preferences": {"language": market.language},
            "address": {"street": street, "city": city, "postCode": zip_code, "countryCode": country},
        }

    def _line_items(self, market: Market, bought_us: int, node: tuple[int, int], ticks: int) -> list[Form]:
        rng, items = self._rng, []
        count = rng.choices((1, 2, 3, 4), weights=(60, 25, 10, 5))[0]
        scale = catalog.CURRENCY_SCALE[market.currency]
        for index in range(count):
            product = rng.choice(catalog.PRODUCTS)
            original = max(100, int(product.base_cents * scale))
            discounted = rng.random() < 0.2
            price = int(original * rng.uniform(0.8, 0.97)) if discounted else original
            items.append(
                {
                    "id": self._ids.uuid1(ticks - (count - index) * rng.randint(1000, 90_000), node),
                    "offer": {
                        "id": self._ids.digits(10),
                        "name": product.name(market.country),
                        "external": {"id": f"SKU-{rng.randrange(10_000, 99_999)}"}
                        if rng.random() < 0.5
                        else None,
                        "productSet": None,
                    },
                    "quantity": rng.choices((1, 2, 3), weights=(75, 18, 7))[0],
                    "originalPrice": money(original, market.currency),
                    "price": money(price, market.currency),
                    "reconciliation": None,
                    "selectedAdditionalServices": [],
                    "vouchers": [],
                    "tax": {"rate": "23.00", "subject": "GOODS", "exemption": None}
                    if rng.random() < 0.3
                    else None,
                    # One checkout is one purchase: every item of a new form has its moment (only a
                    # merge brings items of other purchases together).
                    "boughtAt": iso_ms(bought_us),
                    "discounts": [{"type": rng.choice(catalog.DISCOUNT_TYPES)}] if discounted else None,
                }
            )
        return items

    def _delivery(
        self, market: Market, buyer: dict[str, Any], bought_us: int, *, cash_on_delivery: bool
    ) -> Form:
        rng = self._rng
        # Pickup points are all in Poland; cash on delivery needs a "pobranie" method, and only it has one.
        method = rng.choice(
            [
                m
                for m in catalog.DELIVERY_METHODS
                if m.cash_on_delivery == cash_on_delivery and (market.country == "PL" or not m.pickup)
            ]
        )
        pickup = None
        if method.pickup:
            point_id, name, description, street, zip_code, city = rng.choice(catalog.PICKUP_POINTS)
            pickup = {
                "id": point_id,
                "name": name,
                "description": description,
                "address": {"street": street, "zipCode": zip_code, "city": city, "countryCode": "PL"},
            }
        street, city, zip_code = self._address(market.country)
        day = bought_us - bought_us % MICROS_PER_DAY
        return {
            "address": {
                "firstName": buyer["firstName"]
                if rng.random() < 0.7
                else rng.choice(catalog.FIRST_NAMES[market.country]),
                "lastName": buyer["lastName"],
                "street": street,
                "city": city,
                "zipCode": zip_code,
                "countryCode": market.country,
                "companyName": buyer["companyName"],
                "phoneNumber": self._phone(market),
                "modifiedAt": None,
            },
            "method": {"id": method.id, "name": method.name},
            "pickupPoint": pickup,
            "cost": money(int(method.cost_cents * catalog.CURRENCY_SCALE[market.currency]), market.currency),
            "time": {
                "from": iso_seconds(day + 2 * MICROS_PER_DAY - 2 * 3600 * MICROS_PER_SECOND),
                "to": iso_ms(day + 3 * MICROS_PER_DAY - 2 * 3600 * MICROS_PER_SECOND - 1000),
                "guaranteed": None,
                "dispatch": {
                    "from": iso_ms(day + MICROS_PER_DAY - 1000),
                    "to": iso_ms(day + MICROS_PER_DAY - 1000),
                },
            },
            "smart": rng.random() < 0.3,
            "cancellation": None,
            "calculatedNumberOfPackages": 1,
        }

    def _invoice(self, market: Market, buyer: dict[str, Any]) -> Form:
        rng = self._rng
        choice = rng.random()
        if choice < 0.6:
            return {"required": False, "address": None, "dueDate": None, "features": None}
        street, city, zip_code = self._address(market.country)
        address: Form = {"street": street, "city": city, "zipCode": zip_code, "countryCode": market.country}
        if choice < 0.75 or buyer["companyName"] is None:
            address["company"] = None
            address["naturalPerson"] = {"firstName": buyer["firstName"], "lastName": buyer["lastName"]}
        else:
            tax_types = {"PL": ("PL_NIP",), "CZ": ("CZ_ICO", "CZ_DIC"), "SK": ("SK_ICO", "SK_IC_DPH")}
            ids = [{"type": kind, "value": self._ids.digits(10)} for kind in tax_types[market.country]]
            address["company"] = {
                "name": buyer["companyName"],
                "ids": ids,
                "vatPayerStatus": rng.choice(("ACTIVE", "NOT_APPLICABLE", "NON_ACTIVE")),
                "taxId": ids[0]["value"],
            }
            address["naturalPerson"] = None
        return {"required": True, "address": address, "dueDate": None, "features": None}

    def payment(self, currency: str, *, cash_on_delivery: bool = False) -> Form:
        """An unfinished payment object (finishedAt and paidAmount null until paid): CASH_ON_DELIVERY when
        the delivery method is a cash-on-delivery one, else online, wire transfer or deferred."""
        rng = self._rng
        kind = (
            "CASH_ON_DELIVERY"
            if cash_on_delivery
            else rng.choices(("ONLINE", "WIRE_TRANSFER", "EXTENDED_TERM"), (82, 6, 3))[0]
        )
        provider = {
            "ONLINE": rng.choice(("PAYU", "P24", "AF")),
            "CASH_ON_DELIVERY": "OFFLINE",
            "WIRE_TRANSFER": "OFFLINE",
            "EXTENDED_TERM": "EPT",
        }[kind]
        features = ["ALLEGRO_PAY"] if kind == "ONLINE" and rng.random() < 0.15 else []
        return {
            "id": self._ids.uuid1(),
            "type": kind,
            "provider": provider,
            "finishedAt": None,
            "paidAmount": None,
            "reconciliation": None,
            "features": features,
        }

    def build(self, *, market: Market, buyer: dict[str, Any], bought_us: int) -> Form:
        """A new form in status BOUGHT; `revision` and `updatedAt` are set by the caller."""
        rng = self._rng
        node, ticks = self._ids.node(), self._ids.time_ticks()
        items = self._line_items(market, bought_us, node, ticks)
        cash_on_delivery = rng.random() < _CASH_ON_DELIVERY_SHARE
        delivery = self._delivery(market, buyer, bought_us, cash_on_delivery=cash_on_delivery)
        form: Form = {
            "id": self._ids.uuid1(ticks, node),
            "messageToSeller": rng.choice(catalog.MESSAGES[market.country]) if rng.random() < 0.15 else None,
            "buyer": buyer,
            "payment": self.payment(market.currency, cash_on_delivery=cash_on_delivery),
            "status": "BOUGHT",
            "fulfillment": {
                "status": "NEW",
                "shipmentSummary": {"lineItemsSent": "NONE"},
                "provider": {"id": "ALLEGRO" if rng.random() < 0.05 else "SELLER"},
            },
            "delivery": delivery,
            "invoice": self._invoice(market, buyer),
            "lineItems": items,
            "surcharges": [],
            "note": {"text": rng.choice(catalog.NOTES)} if rng.random() < 0.05 else None,
            "marketplace": {"id": market.id},
            "summary": {"totalToPay": money(0, market.currency)},
            "updatedAt": iso_ms(bought_us),
            "revision": "00000000",
        }
        recompute_total(form)
        return form


def is_cash_on_delivery(form: Form) -> bool:
    """Whether the form's delivery method is a cash-on-delivery one (its payment must be too)."""
    return bool(form["delivery"]["method"]["id"] in catalog.CASH_ON_DELIVERY_METHOD_IDS)


def recompute_total(form: Form) -> None:
    """Set summary.totalToPay to items + delivery + surcharges."""
    currency = form["summary"]["totalToPay"]["currency"]
    total = sum(cents_of(item["price"]) * item["quantity"] for item in form["lineItems"])
    total += cents_of(form["delivery"]["cost"])
    total += sum(cents_of(s["paidAmount"]) for s in form["surcharges"] if s["paidAmount"])
    form["summary"]["totalToPay"] = money(total, currency)
