import pytest
from django.conf import settings
from django.test import Client

from tests.chromium import headless_chromium
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


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from Debian's packages, driven by Selenium, at the
    smallest laptop size the dashboard is laid out for."""
    driver = headless_chromium(1366, 768)
    yield driver
    driver.quit()
