"""The images panel's "create from URL": offered only where the cloud
lists web-download, it makes the image record and starts Glance's
web-download import, whose progress the image's page shows (and follows
without a reload, in headless Chromium); a URL the operator does not allow
is the API's refusal in place, with no image left behind. The URLs come
from a local HTTP server, allowed by the settings of this process's API (or
of the API server the browser uses) and of the real control worker that
downloads."""
import hashlib
import os
import threading
import uuid

import pytest
from django.conf import settings as django_settings
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.compute.nodes import wait_until
from tests.compute.pipeline import ControlWorker
from tests.images.conftest import start_api, stop
from tests.images.web_server import serve_files

pytestmark = pytest.mark.live


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def web():
    with serve_files() as server:
        yield server


@pytest.fixture(scope="module")
def worker(cloud, web, tmp_path_factory):
    worker = ControlWorker(tmp_path_factory.mktemp("from-url") / "control.log",
                           STRATUS_IMAGE_IMPORT_ALLOWED_URLS=f"{web.base}/images/").start()
    yield worker
    worker.stop()


@pytest.fixture
def allowed(settings, web):
    settings.IMAGE_IMPORT_ALLOWED_URLS = [f"{web.base}/images/"]


def images_named(cloud, name):
    return cloud.openstack("image", "list", "--name", name, "-f", "json", cloud="stratus-demo")


def test_without_web_download_there_is_no_url_form_and_posting_it_is_refused(login, cloud, settings, web):
    settings.IMAGE_IMPORT_ALLOWED_URLS = []
    client = login("demo")
    page = client.get("/dashboard/images/")
    assert page.status_code == 200 and b'id="image-from-url"' not in page.content
    name = unique("dash-url-off")
    response = client.post("/dashboard/images/from-url/", {"name": name, "uri": f"{web.base}/images/disk.raw",
                                                          "disk_format": "raw", "container_format": "bare"})
    assert response.status_code == 400 and b"does not create images from URLs" in response.content
    assert images_named(cloud, name) == []


def test_create_from_url_imports_the_image_and_its_page_shows_the_import(login, cloud, web, worker, allowed):
    client = login("demo")
    page = client.get("/dashboard/images/")
    assert b'id="image-from-url"' in page.content and b'name="uri"' in page.content
    data = os.urandom(2**20 + 5)
    web.routes["/images/disk.raw"] = ("data", data)
    name = unique("dash-url")
    response = client.post("/dashboard/images/from-url/", {"name": name, "uri": f"{web.base}/images/disk.raw",
                                                          "disk_format": "raw", "container_format": "bare",
                                                          "visibility": "private"})
    assert response.status_code == 302, response.content.decode()[:2000]
    [listed] = images_named(cloud, name)
    assert response["Location"] == f"/dashboard/images/{listed['ID']}/"

    def active():
        return cloud.openstack("image", "show", listed["ID"], "-f", "json", cloud="stratus-demo")["status"] == "active"

    wait_until(active, timeout=60, message="the image imported from the URL")
    shown = cloud.openstack("image", "show", listed["ID"], "-f", "json", cloud="stratus-demo")
    assert shown["checksum"] == hashlib.md5(data).hexdigest() and shown["size"] == len(data)
    page = client.get(response["Location"]).content.decode()
    assert 'id="image-import" aria-live="polite">web-download: success' in page
    cloud.openstack("image", "delete", listed["ID"], cloud="stratus-demo")


def test_a_url_outside_the_allow_list_is_refused_in_place_with_no_image_left(login, cloud, web, allowed):
    client = login("demo")
    name = unique("dash-url-refused")
    response = client.post("/dashboard/images/from-url/", {"name": name, "uri": f"{web.base}/private/disk.raw",
                                                          "disk_format": "raw", "container_format": "bare"})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="image-url-error"' in page and "does not pass filtering" in page
    assert f'value="{web.base}/private/disk.raw"' in page  # the form kept what was typed
    assert images_named(cloud, name) == []
    assert "/private/disk.raw" not in web.requests


@pytest.fixture(scope="module")
def allowing_server(cloud, web, tmp_path_factory):
    """An API server (and so a dashboard) whose settings allow {web}/images/."""
    server, url = start_api(tmp_path_factory.mktemp("from-url-api"),
                            STRATUS_IMAGE_IMPORT_ALLOWED_URLS=f"{web.base}/images/")
    yield url
    stop([server])


def test_the_image_page_follows_the_import_in_chromium(cloud, browser, web, worker, allowing_server, tmp_path):
    gate = threading.Event()
    web.routes["/images/gated.raw"] = ("gated", (os.urandom(2 * 2**20), gate))
    browser.delete_all_cookies()
    browser.get(allowing_server + "/dashboard/images/")
    browser.find_element(By.ID, "username").send_keys("demo")
    browser.find_element(By.ID, "password").send_keys(django_settings.DEMO_PASSWORD)
    browser.find_element(By.ID, "login").click()
    wait_until(lambda: browser.find_elements(By.ID, "image-from-url"), timeout=30, message="the URL form")
    name = unique("dash-url-browser")
    browser.find_element(By.ID, "url-image-name").send_keys(name)
    browser.find_element(By.ID, "url-image-uri").send_keys(f"{web.base}/images/gated.raw")
    Select(browser.find_element(By.ID, "url-disk-format")).select_by_value("raw")
    browser.find_element(By.ID, "image-from-url-submit").click()

    def status():
        try:
            return browser.find_element(By.ID, "image-status").text
        except StaleElementReferenceException:  # replaced while read: the page is updating it
            return None

    wait_until(lambda: browser.find_elements(By.ID, "image-facts"), timeout=30, message="the image's page")
    assert wait_until(status, timeout=10, message="the image's status") == "importing"
    # The same page, never reloaded, ends showing the finished import.
    browser.execute_script("window.samePage = true")
    gate.set()
    wait_until(lambda: status() == "active", timeout=60, message="the page to show the image active")
    assert browser.execute_script("return window.samePage") is True
    assert "web-download: success" in browser.find_element(By.ID, "image-import").text
    browser.save_screenshot(str(tmp_path / "image-from-url.png"))
    [listed] = images_named(cloud, name)
    cloud.openstack("image", "delete", listed["ID"], cloud="stratus-demo")
