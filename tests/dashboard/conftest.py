import pytest
from django.conf import settings
from django.test import Client

from tests.compute import pipeline

live_db = pipeline.live_db


@pytest.fixture
def login(cloud, live_db):
    """A logged-in Django test client: login("demo")."""

    def log_in(user="demo", password=None, client=None):
        client = client or Client()
        password = password or (settings.DEMO_PASSWORD if user == "demo" else settings.ADMIN_PASSWORD)
        response = client.post("/dashboard/login/", {"domain": "Default", "username": user, "password": password})
        assert response.status_code == 302, response.content.decode()[:2000]
        return client

    return log_in


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from Debian's packages, driven by Selenium, at the
    smallest laptop size the dashboard is laid out for."""
    import shutil

    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            pytest.skip(f"{path} is not installed (Debian's chromium and chromium-driver: scripts/install.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1366,768"):
        options.add_argument(argument)
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as error:
        pytest.skip(f"headless Chromium does not start here: {error.msg}")
    yield driver
    driver.quit()
