"""Fixtures of the object store's tests: tokens of the demo and admin
projects, a second project with a member of its own, and the demo project's
S3 key and boto3 client."""
import uuid

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings


@pytest.fixture(scope="module")
def tokens(cloud):
    return {"admin": cloud.token("stratus"), "demo": cloud.token("stratus-demo")}


def project_id(cloud, name):
    return cloud.openstack("project", "show", name, "-f", "json")["id"]


@pytest.fixture(scope="module")
def demo_account(cloud):
    return f"/object-store/v1/AUTH_{project_id(cloud, 'demo')}"


@pytest.fixture(scope="module")
def other(cloud):
    """A project of its own with a member: (account path, token, project id, user id)."""
    name = f"objects-other-{uuid.uuid4().hex[:8]}"
    project = cloud.openstack("project", "create", name, "-f", "json")["id"]
    user = cloud.openstack("user", "create", "--password", "s3cret", "--project", name, f"{name}-user",
                           "-f", "json")["id"]
    cloud.openstack("role", "add", "--project", name, "--user", user, "member")
    response = requests.post(cloud.url + "/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"id": user, "password": "s3cret"}}},
        "scope": {"project": {"id": project}}}}, timeout=30)
    assert response.status_code == 201, response.text
    return f"/object-store/v1/AUTH_{project}", response.headers["X-Subject-Token"], project, user


def stored_files():
    """Every file of the filesystem back end (data and temporary)."""
    root = settings.OBJECT_DIR
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()) if root.exists() else []


def temporary_files():
    return [name for name in stored_files() if name.startswith("tmp/")]


# The body is signed whole (no aws-chunked trailers), as every client can send it.
CONFIG = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                request_checksum_calculation="when_required", response_checksum_validation="when_required")


def client(cloud, access, secret):
    return boto3.client("s3", endpoint_url=f"{cloud.url}/object-store/s3", aws_access_key_id=access,
                        aws_secret_access_key=secret, region_name="RegionOne", config=CONFIG)


@pytest.fixture(scope="module")
def keys(cloud):
    made = cloud.openstack("ec2", "credentials", "create", "-f", "json", cloud="stratus-demo")
    return made["access"], made["secret"]


@pytest.fixture(scope="module")
def s3(cloud, keys):
    return client(cloud, *keys)


def error_of(call, *args, **kwargs):
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    return raised.value.response["Error"]["Code"], raised.value.response["ResponseMetadata"]["HTTPStatusCode"]
