"""Fixed vocabularies the order generator draws from (immutable tuples only)."""

from typing import NamedTuple


class Market(NamedTuple):
    """One Allegro marketplace and the country its buyers mostly live in."""

    id: str
    currency: str
    country: str
    language: str
    phone_prefix: str
    weight: int


class DeliveryMethod(NamedTuple):
    """A delivery method; pickup methods need a pickup point."""

    id: str
    name: str
    pickup: bool
    cost_cents: int


MARKETS = (
    Market("allegro-pl", "PLN", "PL", "pl-PL", "+48", 80),
    Market("allegro-cz", "CZK", "CZ", "cs-CZ", "+420", 12),
    Market("allegro-sk", "EUR", "SK", "sk-SK", "+421", 8),
)

# Price multipliers per currency, against a base price in PLN grosze.
CURRENCY_SCALE = {"PLN": 1.0, "CZK": 5.8, "EUR": 0.23}

FIRST_NAMES = {
    "PL": (
        "Adam",
        "Kamil",
        "Anna",
        "Katarzyna",
        "Piotr",
        "Magdalena",
        "Tomasz",
        "Agnieszka",
        "Michał",
        "Ewa",
    ),
    "CZ": ("Jan", "Petr", "Jana", "Lucie", "Tomáš", "Eva", "Martin", "Tereza"),
    "SK": ("Peter", "Zuzana", "Marek", "Lucia", "Juraj", "Monika", "Andrej", "Katarína"),
}
LAST_NAMES = {
    "PL": ("Nowak", "Kowalski", "Wiśniewska", "Cebula", "Lewandowski", "Zielińska", "Wójcik", "Kamińska"),
    "CZ": ("Novák", "Svobodová", "Dvořák", "Černá", "Procházka", "Kučerová"),
    "SK": ("Horváth", "Kováčová", "Varga", "Tóthová", "Nagy", "Baláž"),
}
CITIES = {
    "PL": (
        ("Poznań", "60-166"),
        ("Lublin", "20-258"),
        ("Wrocław", "53-609"),
        ("Kraków", "30-001"),
        ("Gdańsk", "80-001"),
        ("Łódź", "90-001"),
        ("Warszawa", "00-950"),
    ),
    "CZ": (("Praha", "110 00"), ("Brno", "602 00"), ("Ostrava", "702 00"), ("Plzeň", "301 00")),
    "SK": (("Bratislava", "811 01"), ("Košice", "040 01"), ("Žilina", "010 01"), ("Nitra", "949 01")),
}
STREETS = {
    "PL": ("Długa", "Polna", "Leśna", "Słoneczna", "Krótka", "Ogrodowa", "Lipowa", "Wagonowa"),
    "CZ": ("Národní", "Husova", "Nádražní", "Palackého", "Školní"),
    "SK": ("Hlavná", "Školská", "Záhradná", "Mierová", "Štúrova"),
}
COMPANY_NAMES = (
    "Firma Handlowa Janex",
    "Udix Sp. z o.o.",
    "Techno-Serwis s.c.",
    "Kowalex",
    "AutoPart s.r.o.",
    "Stavby Novák s.r.o.",
    "Zelený dom s.r.o.",
    "Biuro Rachunkowe Bilans",
)

PRODUCTS = (
    ("Etui Samsung Galaxy S23 Ultra TPU bezbarwne", 1999),
    ("Nillkin backs for Samsung Galaxy S23 Ultra Nature TPU Pro colorless", 2000),
    ("Ładowarka USB-C 65W GaN", 8999),
    ("Kabel HDMI 2.1 2m", 3450),
    ("Słuchawki bezprzewodowe ANC", 24900),
    ("Kubek termiczny 450 ml stal", 4599),
    ("Klocki konstrukcyjne 500 el.", 12900),
    ("Filtr do oczyszczacza powietrza HEPA", 7990),
    ("Szczoteczka soniczna końcówki 4 szt.", 3999),
    ("Powerbank 20000 mAh", 11900),
    ("Lampka biurkowa LED z ładowarką", 15900),
    ("Plecak miejski wodoodporny 25 l", 18999),
)

DELIVERY_METHODS = (
    DeliveryMethod("0b257488-c85d-4507-b967-9b45ffbfa2e8", "Allegro One Box, DPD", True, 1099),
    DeliveryMethod("08c15d0b-9b24-4b3f-89a8-7a2b502abe55", "Allegro One Punkt, UPS", True, 1099),
    DeliveryMethod("1fa56f79-4b6a-4821-a6f2-ca9c16d5c925", "Allegro Paczkomaty InPost", True, 1299),
    DeliveryMethod("7203cb90-864c-4cab-b0fa-0bd5f0a1fc2b", "Allegro Kurier DPD", False, 1599),
    DeliveryMethod("c3066682-97a3-42fe-9eb5-3beeccab840c", "Kurier InPost pobranie", False, 1899),
)

PICKUP_POINTS = (
    (
        "AL002LUB",
        "Allegro One Box, zielony automat",
        None,
        "Jakubowice Murowane 30A",
        "20-258",
        "Jakubowice Murowane",
    ),
    (
        "A004457",
        "Allegro One Punkt",
        "Sklep spożywczy, wejście od parkingu",
        "Wagonowa 2",
        "53-609",
        "Wrocław",
    ),
    ("POZ08A", "Paczkomat POZ08A", "Stacja paliw BP", "Grunwaldzka 108", "60-166", "Poznań"),
    ("KRA12M", "Paczkomat KRA12M", None, "Pawia 5", "31-154", "Kraków"),
)

MESSAGES = (
    "Proszę o szybką wysyłkę",
    "Prosím o rychlé odeslání",
    "Proszę zapakować na prezent",
    "Doručte prosím po 16:00",
    "Bez faktury papierowej, dziękuję",
)
NOTES = ("Sprawdzić stan magazynu", "Klient stały", "Wysłać razem z poprzednim zamówieniem")
DISCOUNT_TYPES = ("BUNDLE", "UNIT_PERCENTAGE_DISCOUNT", "COUPON", "CAMPAIGN")
EMAIL_DOMAINS = ("user.allegrogroup.pl", "allegromail.pl")
