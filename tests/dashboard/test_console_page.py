"""The VNC console embedded in the instance's console page: a real
stratus-tiny guest on qemu:///system (TCG: a few minutes), the console
proxy where the API's URLs point, and Debian's headless Chromium. The
frame shows noVNC connected to this server's screen, and the instance
page's console log shows the guest's boot text."""
from contextlib import contextmanager

import pytest
from django.conf import settings
from selenium.webdriver.common.by import By

from tests.compute import test_console_browser, test_node_qemu
from tests.compute.nodes import wait_until
from tests.compute.test_real_boot import MARKER, boot_tiny

pytestmark = pytest.mark.live

console_node = test_console_browser.console_node
hypervisor = test_node_qemu.hypervisor
live_db = test_console_browser.live_db


@contextmanager
def tiny_guest(cloud, browser):
    """A stratus-tiny guest of the admin project, booted to its marker
    (deleted at the end), and the browser logged out."""
    if not settings.GUEST_IMAGE_PATH.exists():
        pytest.skip(f"no stratus-tiny image at {settings.GUEST_IMAGE_PATH} (make guest-image, or "
                    f"STRATUS_GUEST_IMAGE_PATH)")
    name, server = boot_tiny(cloud, "m1.nano")
    try:
        wait_until(lambda: MARKER in cloud.openstack("console", "log", "show", name, parse=False), timeout=300,
                   interval=3, message="the guest's boot marker on its console")
        browser.delete_all_cookies()
        yield server
    finally:
        browser.switch_to.default_content()
        browser.get("about:blank")
        cloud.openstack("server", "delete", "--wait", name)
        browser.delete_all_cookies()


def log_in_as_admin(browser, url):
    """Opens `url` (a dashboard page: the login page comes first) as admin."""
    browser.get(url)
    browser.find_element(By.ID, "username").send_keys("admin")
    browser.find_element(By.ID, "password").send_keys(settings.ADMIN_PASSWORD)
    browser.find_element(By.ID, "login").click()


def test_the_console_page_embeds_novnc_connected_to_the_guest(cloud, console_node, browser, tmp_path):
    with tiny_guest(cloud, browser) as server:
        log_in_as_admin(browser, f"{cloud.url}/dashboard/instances/{server['id']}/")
        wait_until(lambda: browser.find_elements(By.ID, "console-log"), timeout=30, message="the instance page")
        assert MARKER in browser.find_element(By.ID, "console-log").text

        browser.find_element(By.ID, "console-link").click()
        wait_until(lambda: browser.find_elements(By.ID, "console-frame"), timeout=30, message="the console frame")
        frame = browser.find_element(By.ID, "console-frame")
        assert frame.get_attribute("src").startswith(f"http://127.0.0.1:{cloud.console_proxy_port}/vnc_lite.html")
        test_console_browser.connected_in_frame(browser, frame, server["id"])
        browser.save_screenshot(str(tmp_path / "console.png"))
