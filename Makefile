# Stratus: the two commands a fresh Debian 12 machine (as root) needs are
# `make up` and `make test`. Everything else here is what they are built from.
PY := .venv/bin/python
export STRATUS_API_PORT ?= 8000
TEST_DATABASE_URL ?= postgres://stratus:stratus@127.0.0.1:5432/stratus

.PHONY: up start stop test install services bootstrap guest-image bench conformance ceph ceph-stop

## Install, migrate, bootstrap and run the all-in-one cloud in the foreground.
up: install services guest-image bootstrap
	$(PY) manage.py allinone

## The same, in the background (pid and log files under var/).
start: install services guest-image bootstrap
	$(PY) manage.py allinone --detach

stop:
	$(PY) manage.py allinone --stop

## Install what the tests need, start PostgreSQL and Redis, run the suite.
test: install
	scripts/services.sh redis postgres libvirt
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest $(PYTEST_ARGS)

## Tempest's API tests against the running cloud (`make start` first, same
## environment): per service passed / failed / skipped. See docs/conformance.md.
conformance: install
	scripts/conformance.sh

install:
	scripts/install.sh

## A single-node Ceph cluster in var/ceph (pools images, volumes, objects)
## for the RBD back ends: it prints the ceph.conf to set as
## STRATUS_VOLUME_RBD_CEPH_CONF / STRATUS_IMAGE_RBD_CEPH_CONF.
ceph: install
	$(PY) scripts/ceph_cluster.py start var/ceph

ceph-stop:
	$(PY) scripts/ceph_cluster.py stop var/ceph

services:
	scripts/services.sh redis libvirt

## Build the stratus-tiny guest image (skipped when it is up to date).
guest-image: install
	$(PY) manage.py build_guest_image

bootstrap:
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap
