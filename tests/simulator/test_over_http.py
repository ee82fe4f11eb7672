"""`python -m simulator` over real HTTP on a free loopback port: link a seller and read its orders."""

import httpx

from tests.simulator.conftest import SERVED_BASIC, VENDOR


def test_device_flow_and_listing_over_http(served_simulator: str) -> None:
    with httpx.Client(base_url=served_simulator, timeout=10) as client:
        seller_id = client.post("/_sim/sellers", json={"login": "shop"}).json()["seller_id"]
        assert client.post(f"/_sim/sellers/{seller_id}/orders", json={"count": 120}).status_code == 200
        device = client.post("/auth/oauth/device", data={"client_id": "app"}, headers=SERVED_BASIC).json()
        assert device["verification_uri"] == f"{served_simulator}/skojarz-aplikacje"
        client.post("/_sim/device/approve", json={"user_code": device["user_code"], "seller_id": seller_id})
        grant = {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": device["device_code"],
        }
        token = client.post("/auth/oauth/token", data=grant, headers=SERVED_BASIC).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept": VENDOR, "User-Agent": "Backup/1.0"}
        page = client.get("/order/checkout-forms", params={"offset": 100}, headers=headers)
        assert page.status_code == 200
        assert page.headers["content-type"] == VENDOR
        assert (page.json()["count"], page.json()["totalCount"]) == (20, 120)
        stats = client.get("/_sim/stats").json()
        assert stats["requests"]["GET /order/checkout-forms 200"] == 1
