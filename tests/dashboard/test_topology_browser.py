"""The network panels in a real headless Chromium against the live API
server: the demo user makes a network, a subnet and a router with the
forms, attaches the subnet to the router, and sees them drawn and linked
on the topology page; a router made meanwhile through the API appears in
the drawing without a reload. Screenshots are kept in the test's
directory (pytest's basetemp)."""
import pytest
from django.conf import settings
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.compute.nodes import wait_until
from tests.dashboard import test_network_panels as panels
from tests.dashboard.test_browser import confirm, visit
from tests.network import conftest as neutron
from tests.network.conftest import unique

pytestmark = pytest.mark.live

tokens, admin, demo = neutron.tokens, neutron.admin, neutron.demo
external = panels.external


def drawn(browser, selector):
    """How many SVG elements of the topology match `selector`, in one script."""
    return browser.execute_script("return document.querySelectorAll(arguments[0]).length;", selector)


def test_demo_draws_a_network_subnet_and_router_made_with_the_forms(cloud, browser, demo, external, tmp_path):
    def shot(name):
        browser.save_screenshot(str(tmp_path / f"{name}.png"))

    made = {}
    try:
        browser.get(cloud.url + "/dashboard/topology/")
        assert "/dashboard/login/" in browser.current_url
        browser.find_element(By.ID, "username").send_keys("demo")
        browser.find_element(By.ID, "password").send_keys(settings.DEMO_PASSWORD)
        browser.find_element(By.ID, "login").click()
        # Back where it was going, loaded (a page still loading can win over the next visit).
        wait_until(lambda: browser.current_url.endswith("/dashboard/topology/") and
                   browser.execute_script("return document.readyState") == "complete" and
                   "updated" in browser.find_element(By.ID, "topology-state").text, timeout=30,
                   message="the topology page")
        assert browser.find_element(By.ID, "topology-empty").is_displayed() or drawn(browser, "g.network")

        name = unique("topo-net")
        visit(browser, cloud.url + "/dashboard/networks/", "#network-create")
        browser.find_element(By.ID, "network-name").send_keys(name)
        browser.find_element(By.CSS_SELECTOR, "#network-create button").click()
        wait_until(lambda: browser.find_elements(By.ID, "subnet-create"), timeout=30, message="the network's page")
        made["network"] = browser.current_url.rstrip("/").rsplit("/", 1)[-1]
        browser.find_element(By.ID, "subnet-name").send_keys(f"{name}-subnet")
        browser.find_element(By.ID, "subnet-cidr").send_keys("10.131.0.0/24")
        browser.find_element(By.ID, "dns_nameservers").send_keys("192.0.2.53")
        browser.find_element(By.ID, "subnet-submit").click()
        wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#subnets tbody tr"), timeout=30,
                   message="the subnet's row")
        assert "10.131.0.0/24" in browser.find_element(By.ID, "subnets").text
        shot("network")

        router = unique("topo-router")
        visit(browser, cloud.url + "/dashboard/routers/", "#router-create")
        browser.find_element(By.ID, "router-name").send_keys(router)
        browser.find_element(By.CSS_SELECTOR, "#router-create button").click()
        link = wait_until(lambda: browser.find_elements(By.LINK_TEXT, router), timeout=30, message="the router's row")
        link[0].click()
        wait_until(lambda: browser.find_elements(By.ID, "interface-add"), timeout=30, message="the router's page")
        made["router"] = browser.current_url.rstrip("/").rsplit("/", 1)[-1]
        Select(browser.find_element(By.ID, "subnet_id")).select_by_visible_text(f"{name}-subnet 10.131.0.0/24")
        browser.find_element(By.CSS_SELECTOR, "#interface-add button").click()
        wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#interfaces tbody tr"), timeout=30,
                   message="the interface's row")
        assert "10.131.0.1" in browser.find_element(By.ID, "interfaces").text
        shot("router")

        # The router's way out, set with its form.
        Select(browser.find_element(By.ID, "network_id")).select_by_value(external["id"])
        browser.find_element(By.ID, "gateway-submit").click()
        wait_until(lambda: browser.find_elements(By.ID, "gateway-clear"), timeout=30, message="the gateway set")
        assert external["name"] in browser.find_element(By.ID, "router-gateway").text

        # The other network panels, from the side navigation: a floating IP allocated with the form.
        visit(browser, cloud.url + "/dashboard/", ".bars")
        browser.find_element(By.LINK_TEXT, "Floating IPs").click()
        wait_until(lambda: browser.find_elements(By.ID, "fip-allocate"), timeout=30, message="Floating IPs")
        Select(browser.find_element(By.ID, "floating_network_id")).select_by_value(external["id"])
        browser.find_element(By.ID, "fip-submit").click()
        wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#floating-ips tbody tr"), timeout=30,
                   message="the floating IP's row")
        assert "198.51.100." in browser.find_element(By.ID, "floating-ips").text
        shot("floating-ips")
        browser.find_element(By.LINK_TEXT, "Security groups").click()
        wait_until(lambda: browser.find_elements(By.ID, "security-groups"), timeout=30, message="Security groups")
        shot("security-groups")
        browser.find_element(By.LINK_TEXT, "default").click()
        wait_until(lambda: browser.find_elements(By.ID, "rule-create"), timeout=30, message="the default group")
        shot("security-group")

        visit(browser, cloud.url + "/dashboard/topology/", "#topology-svg g.network")
        network_bar = f"#topology-svg g.network[data-id='{made['network']}']"
        router_box = f"#topology-svg g.router[data-id='{made['router']}']"
        wait_until(lambda: drawn(browser, network_bar) and drawn(browser, router_box), timeout=30,
                   message="the network and the router drawn")
        assert drawn(browser, f"{network_bar} rect") == 1 and name in browser.find_element(
            By.CSS_SELECTOR, f"{network_bar} text").text
        assert router in browser.find_element(By.CSS_SELECTOR, f"{router_box} text").text
        # Linked: one line from the router to the network's bar, with the router's address on it.
        link = f"#topology-svg line.link[data-device='{made['router']}'][data-network='{made['network']}']"
        assert drawn(browser, link) == 1
        gateway = f"#topology-svg line.link.gateway[data-device='{made['router']}'][data-network='{external['id']}']"
        assert drawn(browser, gateway) == 1 and drawn(browser, f"#topology-svg g.network[data-id='{external['id']}']")
        assert "10.131.0.1" in browser.find_element(By.CSS_SELECTOR, "#topology-svg g.links").text
        # The line reaches from the bar to the box.
        geometry = browser.execute_script("""
            const line = document.querySelector(arguments[0]), bar = document.querySelector(arguments[1] + ' rect'),
                  box = document.querySelector(arguments[2] + ' rect');
            return [+line.getAttribute('x1'), +line.getAttribute('x2'), +bar.getAttribute('x'),
                    +bar.getAttribute('width'), +box.getAttribute('x')];""", link, network_bar, router_box)
        x1, x2, bar_x, bar_width, box_x = geometry
        assert bar_x <= x1 <= bar_x + bar_width and x2 == box_x, geometry
        # Keyboard reachable: the router's box is a link to its page.
        assert browser.find_element(By.CSS_SELECTOR, f"{router_box} a").get_dom_attribute("href").endswith(
            f"/dashboard/routers/{made['router']}/")
        shot("topology")

        # Made elsewhere meanwhile: drawn without a reload.
        browser.execute_script("window.notReloaded = true")
        made["later"] = demo.create("routers", "router", name=unique("topo-later"))["id"]
        wait_until(lambda: drawn(browser, f"#topology-svg g.router[data-id='{made['later']}']"), timeout=30,
                   interval=0.3, message="the router made through the API to be drawn")
        assert browser.execute_script("return window.notReloaded === true"), "the page was reloaded"
        shot("topology-live")
        browser.set_window_size(390, 844)  # a phone's width: the drawing scrolls in its box
        visit(browser, cloud.url + "/dashboard/topology/", f"#topology-svg g.router[data-id='{made['router']}']")
        shot("topology-phone")
        browser.set_window_size(1366, 768)

        # Deleting, confirmed in the browser: a network a router still has a leg on is refused in place;
        # once the leg is removed it goes, and the drawing follows.
        visit(browser, f"{cloud.url}/dashboard/networks/{made['network']}/", "#network-delete")
        browser.find_element(By.ID, "network-delete").click()
        assert confirm(browser).startswith(f"Delete network {name}")
        wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".messages li.error"), timeout=30,
                   message="the refusal")
        assert "in use" in browser.find_element(By.CSS_SELECTOR, ".messages li.error").text.lower()
        assert browser.find_element(By.LINK_TEXT, f"router {made['router'][:12]}…")
        visit(browser, f"{cloud.url}/dashboard/routers/{made['router']}/", "#interfaces")
        browser.find_element(By.CSS_SELECTOR, "#interfaces button.danger").click()
        assert "Remove the interface" in confirm(browser)
        wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".messages li.success"), timeout=30,
                   message="the interface removed")
        visit(browser, cloud.url + "/dashboard/topology/", f"#topology-svg g.network[data-id='{made['network']}']")
        assert not drawn(browser, link)
        demo.delete(f"networks/{made['network']}")
        wait_until(lambda: not drawn(browser, network_bar), timeout=30, interval=0.3,
                   message="the deleted network to leave the drawing")
        del made["network"]
    finally:
        if "router" in made and "network" in made:
            subnets = demo.get("subnets", params={"network_id": made["network"]}).json()["subnets"]
            for subnet in subnets:
                demo.put(f"routers/{made['router']}/remove_router_interface", {"subnet_id": subnet["id"]})
        for key in ("router", "later"):
            if key in made:
                demo.delete(f"routers/{made[key]}")
        if "network" in made:
            demo.delete(f"networks/{made['network']}")
