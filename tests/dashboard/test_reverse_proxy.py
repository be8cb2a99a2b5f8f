"""The one-origin setup of docs/reverse-proxy.md: Debian's nginx started
here with docs/nginx-stratus.conf (its ports changed to this run's) in
front of an API server whose console URLs point under the proxy's
/console/. Through that one origin: the APIs' and noVNC's paths answer,
the dashboard logs in (CSRF checks the browser's Origin against the Host
nginx passes) and an image uploads through it; and in headless Chromium
the instance console page's noVNC connects to a real stratus-tiny guest,
its websocket through nginx's /console/."""
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from django.conf import settings
from selenium.webdriver.common.by import By

from tests.compute import test_console_browser, test_node_qemu
from tests.compute.nodes import wait_until
from tests.compute.test_console import run_proxy
from tests.conftest import free_port, start_api_server, stop_api_server
from tests.dashboard.test_console_page import log_in_as_admin, tiny_guest

pytestmark = pytest.mark.live

NGINX = "/usr/sbin/nginx"
SAMPLE = Path(settings.BASE_DIR) / "docs" / "nginx-stratus.conf"

console_node = test_console_browser.console_node
hypervisor = test_node_qemu.hypervisor
live_db = test_console_browser.live_db


def render(sample, listen_port, api_port, console_port):
    """The documented sample with this run's ports; each replaced line must
    be in it (a sample that changed shape fails here, not silently)."""
    text = sample.read_text()
    for line, replacement in (("listen 80;", f"listen 127.0.0.1:{listen_port};"),
                              ("server 127.0.0.1:8000;", f"server 127.0.0.1:{api_port};"),
                              ("server 127.0.0.1:6080;", f"server 127.0.0.1:{console_port};")):
        assert text.count(line) == 1, f"{sample} no longer has one {line!r}"
        text = text.replace(line, replacement)
    return text


def main_config(directory, site):
    """nginx's own configuration around the site, everything under
    `directory` (no system paths written, no daemon left behind)."""
    temp = {name: directory / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    return f"""
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log {directory}/access.log;
    client_body_temp_path {temp['body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    include {site};
}}
"""


@pytest.fixture(scope="module")
def origin(cloud, tmp_path_factory):
    """(the one origin's URL, its access log): nginx on a free port, in
    front of an API server whose console URLs point at its /console/ and
    a console proxy of its own."""
    if not shutil.which(NGINX):
        pytest.skip(f"{NGINX} is not installed (Debian's nginx: scripts/install.sh)")
    directory = tmp_path_factory.mktemp("nginx")
    port, api_port, console_port = free_port(), free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    site = directory / "stratus.conf"
    site.write_text(render(SAMPLE, port, api_port, console_port))
    config = directory / "nginx.conf"
    config.write_text(main_config(directory, site))
    checked = subprocess.run([NGINX, "-t", "-p", str(directory), "-c", str(config)], capture_output=True, text=True)
    if checked.returncode != 0 and "Permission denied" in checked.stderr:
        pytest.skip(f"nginx cannot run here: {checked.stderr.strip()}")
    assert checked.returncode == 0, checked.stderr
    proxy = run_proxy(console_port, directory / "console-proxy.log")
    next(proxy)
    server = start_api_server(api_port, directory / "api.log", STRATUS_PUBLIC_URL=url,
                              STRATUS_CONSOLE_PROXY_URL=f"{url}/console/vnc_lite.html")
    nginx = subprocess.Popen([NGINX, "-p", str(directory), "-c", str(config), "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    def answers():
        if nginx.poll() is not None:
            raise AssertionError(f"nginx exited: {nginx.stderr.read().decode()}")
        try:
            return requests.get(f"{url}/identity/", timeout=5).status_code in (200, 300)
        except requests.ConnectionError:
            return False

    try:
        wait_until(answers, timeout=20, interval=0.2, message="the API through nginx")
        yield url, directory / "access.log"
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        stop_api_server(server)
        proxy.close()


@pytest.fixture(scope="module")
def tls_origin(cloud, tmp_path_factory):
    """(the HTTPS origin's URL, its certificate): the sample's HTTPS form,
    nginx terminating TLS with a certificate made here, in front of an API
    server started with STRATUS_HTTPS=1 (gunicorn takes the scheme from
    nginx's X-Forwarded-Proto)."""
    if not shutil.which(NGINX):
        pytest.skip(f"{NGINX} is not installed (Debian's nginx: scripts/install.sh)")
    directory = tmp_path_factory.mktemp("nginx-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    port, api_port, console_port = free_port(), free_port(), free_port()
    url = f"https://127.0.0.1:{port}"
    text = render(SAMPLE, port, api_port, console_port)
    for commented in ("#   ssl_certificate     /etc/ssl/certs/cloud.example.org.pem;",
                      "#   ssl_certificate_key /etc/ssl/private/cloud.example.org.key;"):
        assert commented in text, f"{SAMPLE} no longer shows its HTTPS lines"
    text = text.replace(f"listen 127.0.0.1:{port};", f"listen 127.0.0.1:{port} ssl;")
    text = text.replace("#   ssl_certificate     /etc/ssl/certs/cloud.example.org.pem;", f"ssl_certificate {cert};")
    text = text.replace("#   ssl_certificate_key /etc/ssl/private/cloud.example.org.key;", f"ssl_certificate_key {key};")
    site = directory / "stratus.conf"
    site.write_text(text)
    config = directory / "nginx.conf"
    config.write_text(main_config(directory, site))
    server = start_api_server(api_port, directory / "api.log", STRATUS_PUBLIC_URL=url, STRATUS_HTTPS="1",
                              STRATUS_CONSOLE_PROXY_URL=f"{url}/console/vnc_lite.html")
    nginx = subprocess.Popen([NGINX, "-p", str(directory), "-c", str(config), "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def answers():
        if nginx.poll() is not None:
            raise AssertionError(f"nginx exited: {nginx.stderr.read().decode()}")
        try:
            return requests.get(f"{url}/identity/", timeout=5, verify=str(cert)).status_code in (200, 300)
        except requests.ConnectionError:
            return False

    try:
        wait_until(answers, timeout=20, interval=0.2, message="the API through nginx over HTTPS")
        yield url, cert
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        stop_api_server(server)


def log_in(session, url, user="demo", password=None):
    page = session.get(f"{url}/dashboard/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    # The Origin a browser sends: CSRF compares it with the Host nginx passed.
    response = session.post(f"{url}/dashboard/login/", allow_redirects=False, headers={"Origin": url}, data={
        "csrfmiddlewaretoken": csrf, "domain": "Default", "username": user,
        "password": password or settings.DEMO_PASSWORD})
    return response


def test_the_sample_routes_the_dashboard_the_apis_and_novnc_by_path(origin):
    url, access_log = origin
    assert requests.get(f"{url}/", allow_redirects=False).headers["Location"].endswith("/dashboard/")
    for path in ("/identity/", "/compute/", "/image/", "/network/", "/volume/"):
        assert requests.get(url + path, timeout=10).status_code in (200, 300), path
    novnc = requests.get(f"{url}/console/vnc_lite.html", timeout=10)
    assert novnc.status_code == 200 and "noVNC" in novnc.text

    session = requests.Session()
    response = log_in(session, url)
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard/"
    assert "Overview of demo" in session.get(f"{url}/dashboard/").text
    # A form posted from another origin is refused.
    other = requests.Session()
    page = other.get(f"{url}/dashboard/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    refused = other.post(f"{url}/dashboard/login/", allow_redirects=False, headers={"Origin": "http://evil.example"},
                         data={"csrfmiddlewaretoken": csrf, "domain": "Default", "username": "demo",
                               "password": settings.DEMO_PASSWORD})
    assert refused.status_code == 403

    # An image upload through the proxy, streamed on (no buffering in nginx).
    csrf = session.cookies["csrftoken"]
    record = session.post(f"{url}/dashboard/images/upload/", headers={"Accept": "application/json",
                                                                      "X-CSRFToken": csrf, "Origin": url},
                          data={"name": "through-nginx", "disk_format": "raw", "container_format": "bare"}).json()
    data = os.urandom(5 * 2**20)
    uploaded = session.put(url + record["file_url"], data=data, headers={
        "X-CSRFToken": csrf, "Origin": url, "Content-Type": "application/octet-stream"})
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["checksum"] == hashlib.md5(data).hexdigest()
    deleted = session.post(url + record["image_url"], headers={"Origin": url}, allow_redirects=False,
                           data={"csrfmiddlewaretoken": csrf, "op": "delete"})
    assert deleted.status_code == 302
    assert f'"PUT {record["file_url"]} HTTP/1.1" 200' in access_log.read_text()


def test_behind_a_tls_proxy_the_dashboard_logs_in_with_secure_cookies_and_links_are_https(tls_origin):
    url, cert = tls_origin
    session = requests.Session()
    session.trust_env = False  # a CA bundle named in the environment would replace this one
    session.verify = str(cert)
    response = log_in(session, url)
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard/"
    assert all(cookie.secure for cookie in session.cookies), [cookie.name for cookie in session.cookies]
    assert "Overview of demo" in session.get(f"{url}/dashboard/").text
    version = session.get(f"{url}/compute/v2.1/").json()["version"]
    assert version["links"][0]["href"].startswith(f"{url}/compute/v2.1")
    # Another origin, even over HTTPS, is still refused.
    page = requests.get(f"{url}/dashboard/login/", verify=str(cert))
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    refused = requests.post(f"{url}/dashboard/login/", verify=str(cert), allow_redirects=False,
                            cookies=page.cookies, headers={"Origin": "https://evil.example"},
                            data={"csrfmiddlewaretoken": csrf, "domain": "Default", "username": "demo",
                                  "password": settings.DEMO_PASSWORD})
    assert refused.status_code == 403


def test_the_console_page_connects_novnc_through_the_proxy(cloud, origin, console_node, browser, tmp_path):
    url, access_log = origin
    with tiny_guest(cloud, browser) as server:
        log_in_as_admin(browser, f"{url}/dashboard/instances/{server['id']}/console/")
        wait_until(lambda: browser.find_elements(By.ID, "console-frame"), timeout=30, message="the console frame")
        frame = browser.find_element(By.ID, "console-frame")
        assert frame.get_attribute("src").startswith(f"{url}/console/vnc_lite.html?path=console%2F%3Ftoken%3D")
        test_console_browser.connected_in_frame(browser, frame, server["id"])
        browser.save_screenshot(str(tmp_path / "console-through-nginx.png"))
    # The websocket went through nginx, switching protocols at /console/
    # (nginx logs a websocket once both ends closed: the guest is gone now).
    wait_until(lambda: re.search(r'"GET /console/\?token=\S+ HTTP/1.1" 101', access_log.read_text()),
               timeout=60, interval=0.5, message=f"the websocket in nginx's log {access_log}")
