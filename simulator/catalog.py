"""Fixed vocabularies the order generator draws from (tuples, and dicts of tuples keyed by country)."""

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
    """A delivery method; pickup methods need a pickup point (all in Poland), cash-on-delivery methods
    ("pobranie") go with a CASH_ON_DELIVERY payment and only with one."""

    id: str
    name: str
    pickup: bool
    cash_on_delivery: bool
    cost_cents: int


class Product(NamedTuple):
    """An offer as each marketplace shows it: allegro.cz and allegro.sk list offers in their language."""

    pl: str
    cs: str
    sk: str
    base_cents: int

    def name(self, country: str) -> str:
        """The offer title on the marketplace of `country` (PL, CZ or SK)."""
        return {"PL": self.pl, "CZ": self.cs, "SK": self.sk}[country]


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
COMPANY_NAMES = {
    "PL": (
        "Firma Handlowa Janex",
        "Udix Sp. z o.o.",
        "Techno-Serwis s.c.",
        "Kowalex",
        "Biuro Rachunkowe Bilans",
    ),
    "CZ": ("AutoPart s.r.o.", "Stavby Novák s.r.o.", "Účetnictví Dvořák s.r.o."),
    "SK": ("Zelený dom s.r.o.", "Kováč Servis s.r.o.", "Stavby Horváth s.r.o."),
}

PRODUCTS = (
    Product(
        "Etui Samsung Galaxy S23 Ultra TPU bezbarwne",
        "Pouzdro Samsung Galaxy S23 Ultra TPU průhledné",
        "Puzdro Samsung Galaxy S23 Ultra TPU priehľadné",
        1999,
    ),
    # The title of the real sandbox samples (reference/allegro/samples), in English on allegro-pl.
    Product(
        "Nillkin backs for Samsung Galaxy S23 Ultra Nature TPU Pro colorless",
        "Kryt Nillkin Nature TPU Pro pro Samsung Galaxy S23 Ultra bezbarvý",
        "Kryt Nillkin Nature TPU Pro pre Samsung Galaxy S23 Ultra bezfarebný",
        2000,
    ),
    Product("Ładowarka USB-C 65W GaN", "Nabíječka USB-C 65W GaN", "Nabíjačka USB-C 65W GaN", 8999),
    Product("Kabel HDMI 2.1 2m", "Kabel HDMI 2.1 2 m", "Kábel HDMI 2.1 2 m", 3450),
    Product("Słuchawki bezprzewodowe ANC", "Bezdrátová sluchátka ANC", "Bezdrôtové slúchadlá ANC", 24900),
    Product("Kubek termiczny 450 ml stal", "Termohrnek 450 ml nerez", "Termohrnček 450 ml nerez", 4599),
    Product("Klocki konstrukcyjne 500 el.", "Stavebnice 500 dílků", "Stavebnica 500 dielikov", 12900),
    Product(
        "Filtr do oczyszczacza powietrza HEPA",
        "HEPA filtr do čističky vzduchu",
        "HEPA filter do čističky vzduchu",
        7990,
    ),
    Product(
        "Szczoteczka soniczna końcówki 4 szt.",
        "Náhradní hlavice pro sonický kartáček 4 ks",
        "Náhradné hlavice pre sonickú kefku 4 ks",
        3999,
    ),
    Product("Powerbank 20000 mAh", "Powerbanka 20000 mAh", "Powerbanka 20000 mAh", 11900),
    Product(
        "Lampka biurkowa LED z ładowarką",
        "Stolní LED lampa s nabíječkou",
        "Stolová LED lampa s nabíjačkou",
        15900,
    ),
    Product(
        "Plecak miejski wodoodporny 25 l",
        "Voděodolný městský batoh 25 l",
        "Vodeodolný mestský batoh 25 l",
        18999,
    ),
)

DELIVERY_METHODS = (
    DeliveryMethod("0b257488-c85d-4507-b967-9b45ffbfa2e8", "Allegro One Box, DPD", True, False, 1099),
    DeliveryMethod("08c15d0b-9b24-4b3f-89a8-7a2b502abe55", "Allegro One Punkt, UPS", True, False, 1099),
    DeliveryMethod("1fa56f79-4b6a-4821-a6f2-ca9c16d5c925", "Allegro Paczkomaty InPost", True, False, 1299),
    DeliveryMethod("7203cb90-864c-4cab-b0fa-0bd5f0a1fc2b", "Allegro Kurier DPD", False, False, 1599),
    DeliveryMethod("c3066682-97a3-42fe-9eb5-3beeccab840c", "Kurier InPost pobranie", False, True, 1899),
    DeliveryMethod("5e0d1b53-7a1c-4f6e-9d2a-3c8b6f41a7d9", "Allegro Kurier DPD pobranie", False, True, 1999),
)
CASH_ON_DELIVERY_METHOD_IDS = frozenset(m.id for m in DELIVERY_METHODS if m.cash_on_delivery)

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

# Buyers write in their marketplace's language; the seller's own notes below are Polish.
MESSAGES = {
    "PL": ("Proszę o szybką wysyłkę", "Proszę zapakować na prezent", "Bez faktury papierowej, dziękuję"),
    "CZ": ("Prosím o rychlé odeslání", "Doručte prosím po 16:00", "Prosím zabalit jako dárek"),
    "SK": ("Prosím o rýchle odoslanie", "Doručte prosím po 16:00", "Prosím zabaliť ako darček"),
}
NOTES = ("Sprawdzić stan magazynu", "Klient stały", "Wysłać razem z poprzednim zamówieniem")
DISCOUNT_TYPES = ("BUNDLE", "UNIT_PERCENTAGE_DISCOUNT", "COUPON", "CAMPAIGN")
EMAIL_DOMAINS = ("user.allegrogroup.pl", "allegromail.pl")
