"""The launch wizard and the volume panels in a real headless Chromium
against the live API server, a real control worker, simulated nodes
(libvirt's test:///default) and a real volume worker (file back end): the
demo user walks the launch steps with a network and a key pair, sees the
row reach ACTIVE without reloading, stops and starts the server, creates a
volume, attaches it and sees it on the instance page, then deletes the
server. Screenshots are kept in the test's directory (pytest's basetemp)."""
import subprocess
import uuid

import pytest
from django.conf import settings
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.compute import pipeline
from tests.compute.nodes import wait_until
from tests.dashboard.test_browser import confirm, image_id, nodes, text, visit
from tests.volumes import conftest as volume_fixtures

control, volume_worker = pipeline.control, volume_fixtures.volume_worker
image_id, nodes = image_id, nodes  # the browser test's module fixtures: two simulated nodes, a tiny image

pytestmark = pytest.mark.live

DEMO = "stratus-demo"


@pytest.fixture(scope="module")
def network(cloud):
    name = f"dashvolnet-{uuid.uuid4().hex[:6]}"
    made = cloud.openstack("network", "create", name, "-f", "json", cloud=DEMO)
    cloud.openstack("subnet", "create", "--network", name, "--subnet-range", "10.79.0.0/24", f"{name}-subnet",
                    cloud=DEMO)
    yield made
    cloud.openstack("network", "delete", name, cloud=DEMO)


def click(browser, element_id):
    browser.find_element(By.ID, element_id).click()


def test_demo_launches_with_the_wizard_and_attaches_a_volume(cloud, nodes, image_id, volume_worker, network,
                                                             browser, tmp_path):
    def shot(name):
        browser.save_screenshot(str(tmp_path / f"{name}.png"))

    key = f"dashvol-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "key")], check=True)
    cloud.openstack("keypair", "create", "--public-key", str(tmp_path / "key.pub"), key, cloud=DEMO)
    volume_id = None
    try:
        browser.delete_all_cookies()
        visit(browser, cloud.url + "/dashboard/login/", "#login")
        browser.find_element(By.ID, "username").send_keys("demo")
        browser.find_element(By.ID, "password").send_keys(settings.DEMO_PASSWORD)
        click(browser, "login")
        wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".bars"), timeout=30, message="the overview")

        # The wizard: one step at a time, Next checks the step's fields.
        visit(browser, cloud.url + "/dashboard/instances/launch/", "#wizard-next")
        shot("wizard-details")
        assert not browser.find_element(By.ID, "launch-submit").is_displayed()
        assert not browser.find_element(By.ID, "image").is_displayed()
        click(browser, "wizard-next")  # no name yet: the step stays
        assert browser.find_element(By.ID, "name").is_displayed()
        name = f"wiz-{uuid.uuid4().hex[:6]}"
        browser.find_element(By.ID, "name").send_keys(name)
        click(browser, "wizard-next")
        Select(browser.find_element(By.ID, "image")).select_by_value(image_id)
        click(browser, "wizard-next")
        Select(browser.find_element(By.ID, "flavor")).select_by_value("42")
        click(browser, "wizard-next")
        browser.find_element(By.CSS_SELECTOR, f"input[name=network][value='{network['id']}']").click()
        shot("wizard-networks")
        click(browser, "wizard-next")
        Select(browser.find_element(By.ID, "key_name")).select_by_value(key)
        click(browser, "wizard-next")
        assert browser.find_element(By.ID, "user_data").is_displayed()
        browser.find_element(By.ID, "user_data").send_keys("#!/bin/sh\necho hello\n")
        click(browser, "launch-submit")

        row_id = wait_until(lambda: browser.execute_script(
            "const link = [...document.querySelectorAll('#instances a')].find((a) => a.textContent === arguments[0]);"
            "return link ? link.closest('tr').id : null;", name), timeout=30, message="the new server's row")
        browser.execute_script("window.notReloaded = true")
        wait_until(lambda: text(browser, f"#{row_id} .status") in ("ACTIVE", "ERROR"), timeout=180, interval=0.3,
                   message=f"the row of {name} to reach ACTIVE")
        assert text(browser, f"#{row_id} .status") == "ACTIVE"
        assert browser.execute_script("return window.notReloaded === true"), "the page was reloaded"
        assert "10.79.0." in text(browser, f"#{row_id}")
        shot("instances")
        server_id = row_id.removeprefix("server-")
        server = cloud.connect(DEMO).compute.get_server(server_id)
        assert server.key_name == key and network["name"] in server.addresses

        visit(browser, f"{cloud.url}/dashboard/instances/{server_id}/", "#live-region")
        wait_until(lambda: text(browser, "#server-status") == "ACTIVE", timeout=30, message="the instance page")
        assert not browser.find_elements(By.ID, "action-start")
        click(browser, "action-stop")
        assert confirm(browser) == f"Stop {name}?"
        wait_until(lambda: text(browser, "#server-status") == "SHUTOFF" and browser.find_elements(By.ID, "action-start"),
                   timeout=120, interval=0.3, message="the page to show SHUTOFF and offer Start")
        assert not browser.find_elements(By.ID, "action-stop")
        click(browser, "action-start")
        wait_until(lambda: text(browser, "#server-status") == "ACTIVE" and browser.find_elements(By.ID, "action-stop"),
                   timeout=120, interval=0.3, message="the page to show ACTIVE again")

        # A volume made with the form, attached from its page.
        visit(browser, cloud.url + "/dashboard/volumes/", "#volume-create")
        volume_name = f"wizdata-{uuid.uuid4().hex[:6]}"
        browser.find_element(By.ID, "volume-name").send_keys(volume_name)
        browser.find_element(By.ID, "volume-size").send_keys("1")
        click(browser, "volume-create-submit")
        wait_until(lambda: browser.find_elements(By.ID, "volume-status"), timeout=30, message="the volume's page")
        volume_id = browser.current_url.rstrip("/").rsplit("/", 1)[-1]

        def available():
            browser.refresh()
            return text(browser, "#volume-status") == "available" and browser.find_elements(By.ID, "volume-attach")

        wait_until(available, timeout=60, interval=1, message="the volume to be available")
        shot("volume")
        Select(browser.find_element(By.ID, "attach-server")).select_by_value(server_id)
        browser.find_element(By.CSS_SELECTOR, "#volume-attach button").click()
        wait_until(lambda: "on /dev/vdb" in (text(browser, "#volume-attachments") or ""), timeout=60,
                   message="the volume's page to show the attachment")
        visit(browser, f"{cloud.url}/dashboard/instances/{server_id}/", f"#attached-{volume_id}")
        assert "/dev/vdb" in text(browser, f"#attached-{volume_id}") and "1 GB" in text(browser, f"#attached-{volume_id}")
        shot("instance-with-volume")

        click(browser, "action-delete")
        assert "cannot be undone" in confirm(browser)
        wait_until(lambda: browser.current_url.endswith("/dashboard/instances/") and
                   browser.find_elements(By.ID, "instances"), timeout=30, message="the list")
        wait_until(lambda: not browser.find_elements(By.ID, row_id), timeout=120, interval=0.3,
                   message="the deleted server's row to go")
        shot("instances-after-delete")
        storage = cloud.connect(DEMO).block_storage
        wait_until(lambda: storage.get_volume(volume_id).status == "available", timeout=60,
                   message="the volume to be free again")
        browser.set_window_size(390, 844)  # a phone's width
        visit(browser, cloud.url + "/dashboard/volumes/", "#volume-create")
        shot("volumes-phone")
        browser.set_window_size(1366, 768)
    finally:
        if volume_id:
            storage = cloud.connect(DEMO).block_storage
            wait_until(lambda: storage.get_volume(volume_id).status in ("available", "error"), timeout=60,
                       message="the volume to settle")
            storage.delete_volume(volume_id)
        cloud.openstack("keypair", "delete", key, cloud=DEMO)
