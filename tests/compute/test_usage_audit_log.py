"""os-instance_usage_audit_log (admins): the last whole month before now or
before a given time, and the compute hosts (services not forced down,
disabled ones too) the usage audit has not run on, which is every one:
Stratus runs no usage audit, as Nova with its audit off."""
import urllib.parse
import uuid

import pytest
from django.utils import timezone

from compute.models import Service
from tests.compute.pipeline import live_db  # noqa: F401  (committed rows the server sees)

pytestmark = pytest.mark.live

LOGS = "/compute/v2.1/os-instance_usage_audit_log"


@pytest.fixture(scope="module")
def world(cloud, live_db):  # noqa: F811
    suffix = uuid.uuid4().hex[:6]
    hosts = {"up": f"audit-up-{suffix}", "disabled": f"audit-off-{suffix}", "forced": f"audit-down-{suffix}"}
    Service.objects.create(host=hosts["up"], binary=Service.COMPUTE_BINARY, last_seen_up=timezone.now())
    Service.objects.create(host=hosts["disabled"], binary=Service.COMPUTE_BINARY, disabled=True)
    Service.objects.create(host=hosts["forced"], binary=Service.COMPUTE_BINARY, forced_down=True)
    Service.objects.create(host=hosts["up"], binary="stratus-scheduler", last_seen_up=timezone.now())
    yield {"admin": cloud.token("stratus"), "demo": cloud.token("stratus-demo"), "hosts": hosts}
    Service.objects.filter(host__in=hosts.values()).delete()


def expected_hosts():
    return sorted(set(Service.objects.filter(binary=Service.COMPUTE_BINARY, forced_down=False)
                      .values_list("host", flat=True)))


def test_the_last_month_and_the_hosts_not_run(api, world):
    answer = api.get(LOGS, token=world["admin"])
    assert answer.status_code == 200, answer.text
    log = answer.json()["instance_usage_audit_logs"]
    hosts = expected_hosts()
    assert world["hosts"]["up"] in hosts and world["hosts"]["disabled"] in hosts
    assert world["hosts"]["forced"] not in log["hosts_not_run"]
    assert sorted(log["hosts_not_run"]) == hosts
    assert (log["num_hosts"], log["num_hosts_not_run"], log["num_hosts_done"], log["num_hosts_running"]) == (
        len(hosts), len(hosts), 0, 0)
    assert log["log"] == {} and (log["total_instances"], log["total_errors"]) == (0, 0)
    assert log["overall_status"] == f"0 of {len(hosts)} hosts done. 0 errors."
    now = timezone.now()
    ending = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    assert log["period_ending"] == ending.strftime("%Y-%m-%d %H:%M:%S")
    assert log["period_beginning"].endswith("-01 00:00:00") and log["period_beginning"] < log["period_ending"]


@pytest.mark.parametrize("before, beginning, ending", [
    ("2026-03-15 10:20:30", "2026-02-01 00:00:00", "2026-03-01 00:00:00"),
    ("2026-01-02 00:00:00.250000", "2025-12-01 00:00:00", "2026-01-01 00:00:00"),
    # At the first instant of a month the month just ended is not yet a completed period (as in Nova).
    ("2026-03-01 00:00:00", "2026-01-01 00:00:00", "2026-02-01 00:00:00"),
])
def test_the_period_before_a_time(api, world, before, beginning, ending):
    answer = api.get(f"{LOGS}/{urllib.parse.quote(before)}", token=world["admin"])
    assert answer.status_code == 200, answer.text
    log = answer.json()["instance_usage_audit_log"]
    assert (log["period_beginning"], log["period_ending"]) == (beginning, ending)
    assert sorted(log["hosts_not_run"]) == expected_hosts()


@pytest.mark.parametrize("before", ["invalid_time", "2026-13-01 00:00:00", "2026-03-01", "2026-03-01T00:00:00"])
def test_a_bad_time_is_400(api, world, before):
    answer = api.get(f"{LOGS}/{urllib.parse.quote(before)}", token=world["admin"])
    assert answer.status_code == 400 and "Invalid timestamp" in answer.json()["badRequest"]["message"]


def test_members_and_forged_tokens_are_refused(api, world):
    for path in (LOGS, f"{LOGS}/{urllib.parse.quote('2026-03-15 10:20:30')}"):
        refused = api.get(path, token=world["demo"])
        assert refused.status_code == 403 and "forbidden" in refused.json()
        assert api.get(path, token="forged").status_code == 401
