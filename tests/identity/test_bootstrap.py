"""Setting up (bootstrap on every `make up` / `make start`) must not weaken
what an operator set: passwords, file modes, the hosts the API answers to."""
import os
import stat
import subprocess
import sys

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

from identity.models import User
from identity.passwords import check_secret, hash_secret
from tests.conftest import server_env


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.django_db
def test_bootstrap_again_keeps_the_passwords_an_operator_set(monkeypatch):
    call_command("bootstrap", public_url="http://127.0.0.1:8000", clouds_yaml="")
    admin, demo = User.objects.get(name="admin"), User.objects.get(name="demo")
    admin.password, demo.password = hash_secret("set-by-the-operator"), hash_secret("demo-chose-this")
    admin.save()
    demo.save()
    operator = get_user_model().objects.get(username="admin")
    operator.set_password("operator-site-password")
    operator.save()

    # A start with the defaults, then one with other passwords in the environment.
    call_command("bootstrap", public_url="http://127.0.0.1:8000", clouds_yaml="")
    monkeypatch.setattr(settings, "ADMIN_PASSWORD", "something-else")
    call_command("bootstrap", public_url="http://127.0.0.1:8000", clouds_yaml="")

    assert check_secret("set-by-the-operator", User.objects.get(name="admin").password)
    assert check_secret("demo-chose-this", User.objects.get(name="demo").password)
    assert get_user_model().objects.get(username="admin").check_password("operator-site-password")


@pytest.mark.django_db
def test_clouds_yaml_is_written_0600_once_and_then_kept(tmp_path):
    os.umask(0o022)
    path = tmp_path / "clouds.yaml"
    call_command("bootstrap", public_url="http://127.0.0.1:8000", clouds_yaml=str(path))
    assert mode(path) == 0o600
    assert f"password: {settings.ADMIN_PASSWORD}" in path.read_text()
    assert "stratus-system:" in path.read_text() and "system_scope: all" in path.read_text()

    # The operator changed a password and wrote it in: the next start leaves the file alone.
    path.write_text(path.read_text().replace(settings.ADMIN_PASSWORD, "new-admin-password"))
    call_command("bootstrap", public_url="http://127.0.0.1:8000", clouds_yaml=str(path))
    assert "new-admin-password" in path.read_text() and mode(path) == 0o600


def run_in_fresh_process(code, **env):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=settings.BASE_DIR, env=server_env(**env))
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_the_api_answers_only_to_its_public_host_and_loopback(tmp_path):
    code = ("import django; django.setup(); from django.test import Client\n"
            "for host in ('cloud.example.org:8000', '127.0.0.1:8000', 'localhost', 'evil.example', '10.1.2.3'):\n"
            "    response = Client(HTTP_HOST=host).get('/identity/v3')\n"
            "    print(response.status_code, response.json()['error']['code'] if response.status_code == 400 else '-')")
    codes = run_in_fresh_process(code, STRATUS_PUBLIC_URL="http://cloud.example.org:8000")
    assert codes == ["200", "-", "200", "-", "200", "-", "400", "400", "400", "400"]


@pytest.mark.live
def test_the_live_api_refuses_a_foreign_host_in_the_openstack_error_format(cloud):
    refused = requests.get(f"{cloud.url}/identity/v3", headers={"Host": "attacker.example"}, timeout=30)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == 400
    assert requests.get(f"{cloud.url}/identity/v3", timeout=30).status_code == 200
