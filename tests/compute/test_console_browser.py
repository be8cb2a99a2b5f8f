"""The console URL as a user opens it: `openstack console url show --novnc`
of a real stratus-tiny guest on qemu:///system, opened in headless Chromium
(Debian's chromium and chromium-driver, driven by Selenium): the proxy
serves noVNC's page, the page says it is connected, and its canvas shows
the guest's screen. The node's management address is 127.0.0.2: its
guests' VNC servers listen there, not on the proxy's loopback address."""
import uuid
import xml.etree.ElementTree as ET

import pytest

from tests.chromium import headless_chromium
from tests.compute.nodes import NodeWorker, forget_hosts, wait_until
from tests.compute.pipeline import ControlWorker, live_db  # noqa: F401  (live_db is a fixture)
from tests.compute.test_console import NODE_IP, run_proxy
from tests.compute.test_node_qemu import hypervisor  # noqa: F401  (a fixture)
from tests.compute.test_real_boot import MARKER, boot_tiny

pytestmark = pytest.mark.live


# Pixels of the noVNC canvas that are not all one colour (a blank or
# never-drawn canvas has one).
CANVAS_COLOURS = """
const canvas = document.querySelector('#screen canvas');
if (!canvas || canvas.width === 0 || canvas.height === 0) return null;
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let differing = 0;
for (let i = 4; i < data.length; i += 4) {
  if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2]) differing++;
}
return {width: canvas.width, height: canvas.height, differing: differing};
"""


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium(1280, 900)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def console_node(live_db, cloud, hypervisor, tmp_path_factory):
    """A control worker, a node worker on qemu:///system and the console
    proxy where the API's console URLs point."""
    base = tmp_path_factory.mktemp("browser")
    control = ControlWorker(base / "control.log").start()
    host = f"browser-{uuid.uuid4().hex[:6]}"
    worker = NodeWorker(["--host", host, "--uri", "qemu:///system", "--my-ip", NODE_IP], base / "node.log",
                        STRATUS_PUBLIC_URL=cloud.url, STRATUS_NODES_DIR=str(base / "nodes")).start()
    proxy = run_proxy(cloud.console_proxy_port, base / "proxy.log")
    next(proxy)
    yield host
    proxy.close()
    worker.stop()
    control.stop()
    forget_hosts([host])


def settled(text):
    return text.startswith("Connected") or "Disconnected" in text or "went wrong" in text


def connected_in_frame(browser, frame, server_id):
    """Waits for noVNC in `frame` (an iframe element) to connect to the
    server's screen and draw it; asserts it did, and leaves the frame."""
    browser.switch_to.frame(frame)
    try:
        def status():
            return browser.execute_script("return (document.getElementById('status') || {}).textContent || ''")

        wait_until(lambda: settled(status()), timeout=60, interval=0.5, message="noVNC in the frame to connect")
        assert status().startswith("Connected") and server_id in status(), status()
        screen = wait_until(lambda: (browser.execute_script(CANVAS_COLOURS) or {}).get("differing") and
                            browser.execute_script(CANVAS_COLOURS), timeout=60, interval=0.5,
                            message="the guest's screen on the canvas")
        assert screen["width"] > 0 and screen["height"] > 0
    finally:
        browser.switch_to.default_content()


def test_the_novnc_url_opens_the_guest_screen_in_chromium(cloud, console_node, browser, hypervisor, tmp_path):
    assert cloud.openstack("hypervisor", "show", console_node, "-f", "json")["host_ip"] == NODE_IP
    name, server = boot_tiny(cloud, "m1.nano")
    assert server["OS-EXT-SRV-ATTR:host"] == console_node
    domain = ET.fromstring(hypervisor.lookupByName(f"instance-{server['id']}").XMLDesc())
    assert domain.find("devices/graphics[@type='vnc']").get("listen") == NODE_IP
    wait_until(lambda: MARKER in cloud.openstack("console", "log", "show", name, parse=False), timeout=300,
               interval=3, message="the guest's boot marker on its console")

    url = cloud.openstack("console", "url", "show", "--novnc", name, "-f", "json")["url"]
    browser.get(url)
    assert "noVNC" in browser.title, browser.page_source[:500]

    def status():
        return browser.execute_script("return document.getElementById('status').textContent")

    wait_until(lambda: settled(status()), timeout=60, interval=0.5, message="noVNC to connect")
    # noVNC names the desktop it reached: QEMU's, of this server's domain.
    assert status().startswith("Connected") and server["id"] in status(), status()
    screen = wait_until(lambda: (browser.execute_script(CANVAS_COLOURS) or {}).get("differing") and
                        browser.execute_script(CANVAS_COLOURS), timeout=60, interval=0.5,
                        message="the guest's screen on the canvas")
    assert screen["width"] > 0 and screen["height"] > 0
    browser.save_screenshot(str(tmp_path / "console.png"))  # what the user saw, kept with the test's files

    # The URL is spent: opening it again does not connect.
    browser.get(url)
    wait_until(lambda: settled(status()), timeout=60, interval=0.5, message="noVNC to give up on a used token")
    assert not status().startswith("Connected"), status()
    cloud.openstack("server", "delete", "--wait", name)
