"""A person links an account in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium through the system chromedriver, nothing downloaded) opens
`verification_uri_complete` on a served simulator, picks a seller and approves or denies; the device-code
poll then answers as Allegro would (reference/allegro/README.md §1.2)."""

import os
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from tests.simulator.conftest import DEVICE_GRANT, SERVED_BASIC, VENDOR

_BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
_DRIVER = shutil.which("chromedriver")
_MISSING = (
    "headless Chromium is not installed (Debian packages chromium and chromium-driver; .ci/run installs them)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One headless Chromium for the module, through the system chromedriver."""
    if _BROWSER is None or _DRIVER is None:
        if os.environ.get("CI"):
            pytest.fail(_MISSING)  # CI installs the browser: its absence there is a broken set-up
        pytest.skip(_MISSING)
    options = webdriver.ChromeOptions()
    options.binary_location = _BROWSER
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    # Both paths given: Selenium Manager has nothing to look up or download.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=_DRIVER))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def _start_device(client: httpx.Client) -> dict[str, Any]:
    response = client.post("/auth/oauth/device", data={"client_id": "app"}, headers=SERVED_BASIC)
    assert response.status_code == 200, response.text
    device: dict[str, Any] = response.json()
    return device


def _poll(client: httpx.Client, device_code: str) -> httpx.Response:
    data = {"grant_type": DEVICE_GRANT, "device_code": device_code}
    return client.post("/auth/oauth/token", data=data, headers=SERVED_BASIC)


def _message(browser: WebDriver) -> str:
    shown = WebDriverWait(browser, 10).until(
        expected_conditions.visibility_of_element_located((By.ID, "message"))
    )
    text: str = shown.text
    return text


def test_person_approves_in_chromium_and_the_poll_gets_the_chosen_seller_s_tokens(
    served_simulator: str, browser: WebDriver
) -> None:
    with httpx.Client(base_url=served_simulator, timeout=10) as client:
        client.post("/_sim/sellers", json={"login": "first-shop"}).raise_for_status()
        chosen = client.post("/_sim/sellers", json={"login": "second-shop"}).json()["seller_id"]
        client.post(f"/_sim/sellers/{chosen}/orders", json={"count": 3}).raise_for_status()
        device = _start_device(client)
        assert _poll(client, device["device_code"]).json()["error"] == "authorization_pending"

        browser.get(device["verification_uri_complete"])
        code_field = browser.find_element(By.NAME, "user_code")
        assert code_field.get_attribute("value") == device["user_code"]
        Select(browser.find_element(By.NAME, "seller_id")).select_by_value(chosen)
        browser.find_element(By.ID, "approve").click()
        message = _message(browser)
        assert "linked to seller second-shop" in message
        assert browser.find_elements(By.NAME, "user_code") == []

        granted = _poll(client, device["device_code"])
        assert granted.status_code == 200, granted.text
        token = granted.json()["access_token"]
        payload = jwt.decode(token, options={"verify_signature": False})
        assert payload is not None and payload["user_name"] == chosen
        headers = {"Authorization": f"Bearer {token}", "Accept": VENDOR, "User-Agent": "Backup/1.0"}
        orders = client.get("/order/checkout-forms", headers=headers)
        assert orders.json()["totalCount"] == 3


def test_person_denies_in_chromium_and_the_poll_answers_access_denied(
    served_simulator: str, browser: WebDriver
) -> None:
    with httpx.Client(base_url=served_simulator, timeout=10) as client:
        client.post("/_sim/sellers", json={"login": "shop"}).raise_for_status()
        device = _start_device(client)

        browser.get(device["verification_uri"])
        code = device["user_code"]
        browser.find_element(By.NAME, "user_code").send_keys(f"{code[:3]} {code[3:6]} {code[6:]}")
        browser.find_element(By.ID, "deny").click()
        assert "You denied access" in _message(browser)

        denied = _poll(client, device["device_code"])
        assert (denied.status_code, denied.json()) == (400, {"error": "access_denied"})
