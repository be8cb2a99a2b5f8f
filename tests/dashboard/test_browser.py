"""The dashboard in a real headless Chromium against the live API server,
a real control worker and simulated nodes (libvirt's test:///default):
the demo user logs in, launches a server through the launch form, sees
its row go through the boot pipeline to ACTIVE without reloading the page,
stops and starts it from its page (whose status follows live), deletes it
and sees the row go. Screenshots of each page are kept in the test's
directory (pytest's basetemp)."""
import subprocess
import uuid

import pytest
from django.conf import settings
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.compute.nodes import wait_until
from tests.compute import pipeline
from tests.compute.pipeline import start_nodes, stop_nodes, upload_tiny_image

control = pipeline.control

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def nodes(cloud, control, tmp_path_factory):
    worker, hosts = start_nodes(cloud, tmp_path_factory.mktemp("dash-nodes"), 2, "dash")
    yield hosts
    stop_nodes(worker, hosts)


@pytest.fixture(scope="module")
def image_id(cloud, tmp_path_factory):
    image = upload_tiny_image(cloud, tmp_path_factory.mktemp("dash-image"))
    yield image
    cloud.openstack("image", "delete", image)


def text(browser, selector):
    """The element's text, read in one script (live updates replace elements)."""
    return browser.execute_script(
        "const found = document.querySelector(arguments[0]); return found ? found.textContent.trim() : null;",
        selector)


def visit(browser, url, ready):
    """Opens `url` and waits until its page has loaded and shows `ready`
    (a CSS selector): a navigation still under way may hide the new page."""
    browser.get(url)
    try:
        wait_until(lambda: browser.execute_script("return document.readyState") == "complete" and
                   browser.find_elements(By.CSS_SELECTOR, ready), timeout=30, message=f"{url} to show {ready}")
    except AssertionError as error:
        raise AssertionError(f"{error}; the browser is at {browser.current_url}: {browser.title}") from None


def confirm(browser):
    alert = browser.switch_to.alert
    question = alert.text
    alert.accept()
    return question


def test_demo_launches_watches_stops_starts_and_deletes_a_server(cloud, nodes, image_id, browser, tmp_path):
    def shot(name):
        browser.save_screenshot(str(tmp_path / f"{name}.png"))

    browser.get(cloud.url + "/dashboard/instances/")
    assert "/dashboard/login/" in browser.current_url  # logged out: the login page
    shot("login")
    browser.find_element(By.ID, "username").send_keys("demo")
    browser.find_element(By.ID, "password").send_keys(settings.DEMO_PASSWORD)
    browser.find_element(By.ID, "login").click()
    # Back where it was going.
    wait_until(lambda: browser.current_url.endswith("/dashboard/instances/"), timeout=30, message="the list")
    visit(browser, cloud.url + "/dashboard/", ".bars")
    assert "Overview of demo" in text(browser, "h1")
    shot("overview")

    # The server's key pair, imported on the Key pairs page.
    key = f"dash-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "key")], check=True)
    visit(browser, cloud.url + "/dashboard/keypairs/", "#keypair-import")
    browser.find_element(By.ID, "import-name").send_keys(key)
    browser.find_element(By.ID, "public_key").send_keys((tmp_path / "key.pub").read_text().strip())
    browser.find_element(By.CSS_SELECTOR, "#keypair-import button").click()
    wait_until(lambda: browser.find_elements(By.ID, f"keypair-{key}"), timeout=30, message="the imported key")
    shot("keypairs")
    for panel in ("images", "networks", "routers"):
        visit(browser, f"{cloud.url}/dashboard/{panel}/", f".side a[aria-current][href$='/{panel}/']")
        assert text(browser, "h1") == panel.capitalize()
        shot(panel)

    visit(browser, cloud.url + "/dashboard/instances/launch/", "#launch-form")
    shot("launch")
    name = f"dash-{uuid.uuid4().hex[:6]}"
    # The form's steps (one shown at a time), reached by their buttons.
    browser.find_element(By.ID, "name").send_keys(name)
    browser.find_element(By.ID, "wizard-step-2").click()
    Select(browser.find_element(By.ID, "image")).select_by_value(image_id)
    browser.find_element(By.ID, "wizard-step-3").click()
    Select(browser.find_element(By.ID, "flavor")).select_by_value("42")
    browser.find_element(By.ID, "wizard-step-5").click()
    Select(browser.find_element(By.ID, "key_name")).select_by_value(key)
    for box in browser.find_elements(By.CSS_SELECTOR, "input[name=security_group]:checked"):
        box.click()  # no network, so no port to put in a group
    browser.find_element(By.ID, "wizard-step-6").click()
    browser.find_element(By.ID, "launch-submit").click()
    # In one script: the live stream may replace the row at any moment.
    row_id = wait_until(lambda: browser.execute_script(
        "const link = [...document.querySelectorAll('#instances a')].find((a) => a.textContent === arguments[0]);"
        "return link ? link.closest('tr').id : null;", name), timeout=30, message="the new server's row")
    browser.execute_script("window.notReloaded = true")

    seen = []

    def status():
        state = (text(browser, f"#{row_id} .status"), text(browser, f"#{row_id} .step"))
        if not seen or seen[-1] != state:
            seen.append(state)
        return state[0] == "ACTIVE" or state[0] == "ERROR"

    wait_until(status, timeout=180, interval=0.2, message=f"the row of {name} to reach ACTIVE")
    # The row was drawn while building and followed the pipeline live.
    assert seen[0][0] == "BUILD" and seen[-1] == ("ACTIVE", "—"), seen
    print("the row went through", seen)
    assert browser.execute_script("return window.notReloaded === true"), "the page was reloaded"
    shot("instances")

    visit(browser, f"{cloud.url}/dashboard/instances/{row_id.removeprefix('server-')}/", "#live-region")
    wait_until(lambda: text(browser, "#server-status") == "ACTIVE", timeout=30, message="the instance page")
    assert "conductor_schedule" in text(browser, "#timeline") and "compute_spawn" in text(browser, "#timeline")
    shot("instance")

    # A simulated node's guest has no VNC server: the console page says
    # so in place, in the API's words (test_console_page.py opens a real one).
    browser.find_element(By.ID, "console-link").click()
    wait_until(lambda: browser.find_elements(By.ID, "console-error"), timeout=30, message="the console page")
    assert "has no VNC server" in text(browser, "#console-error")
    assert not browser.find_elements(By.ID, "console-frame")
    browser.back()
    wait_until(lambda: text(browser, "#server-status") == "ACTIVE", timeout=30, message="the instance page")

    browser.find_element(By.ID, "action-stop").click()
    assert confirm(browser) == f"Stop {name}?"
    wait_until(lambda: text(browser, "#server-status") == "SHUTOFF", timeout=120, interval=0.3,
               message="the page to show SHUTOFF")
    browser.find_element(By.ID, "action-start").click()
    wait_until(lambda: text(browser, "#server-status") == "ACTIVE", timeout=120, interval=0.3,
               message="the page to show ACTIVE again")
    wait_until(lambda: "stop" in text(browser, "#timeline") and "start" in text(browser, "#timeline"),
               timeout=30, interval=0.3, message="stop and start in the action log")

    browser.find_element(By.ID, "action-delete").click()
    assert "cannot be undone" in confirm(browser)
    wait_until(lambda: browser.current_url.endswith("/dashboard/instances/") and
               browser.execute_script("return document.readyState") == "complete" and
               browser.find_elements(By.ID, "instances"), timeout=30, message="the list")
    wait_until(lambda: not browser.find_elements(By.ID, row_id), timeout=120, interval=0.3,
               message="the deleted server's row to go")
    shot("instances-after-delete")
    browser.set_window_size(390, 844)  # a phone's width: the same page, one column
    visit(browser, cloud.url + "/dashboard/", ".bars")
    shot("overview-phone")
    browser.set_window_size(1366, 768)

    browser.find_element(By.ID, "logout").click()
    wait_until(lambda: "/dashboard/login/" in browser.current_url, timeout=30, message="the login page")
    visit(browser, cloud.url + "/dashboard/", "#login")
    assert "/dashboard/login/" in browser.current_url
    cloud.openstack("keypair", "delete", key, cloud="stratus-demo")
