#!/usr/bin/env bash
# Starts the daemons Stratus uses, on a machine without systemd. Each one is
# reused when something already answers on its port.
#   scripts/services.sh redis postgres libvirt
set -euo pipefail
cd "$(dirname "$0")/.."

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # wait_for <what> <command...>
  local what=$1; shift
  for _ in $(seq 1 100); do "$@" && return 0; sleep 0.1; done
  echo "$what did not come up" >&2; return 1
}

start_redis() {
  if answers 6379; then echo "==> redis: already answering on 6379"; return; fi
  echo "==> redis: starting"
  mkdir -p /var/lib/redis /var/log/redis
  # The append-only file keeps queued tasks across a restart of Redis
  # (at most the last second's are lost).
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly yes --appendfsync everysec --dir /var/lib/redis --logfile /var/log/redis/redis.log
  wait_for redis answers 6379
}

start_postgres() {
  local version
  version=$(ls /etc/postgresql | sort -n | tail -1)
  if ! answers 5432; then
    # Each process of a cloud holds a connection per thread (an all-in-one
    # about 40, a test run's live servers as many again): the default of
    # 100 runs out when a cloud and a test run share the server.
    echo "max_connections = 300" > "/etc/postgresql/$version/main/conf.d/stratus.conf"
    echo "==> postgresql $version: starting"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_for postgresql answers 5432
  else
    echo "==> postgresql: already answering on 5432"
  fi
  # The project's role may create databases: the test run makes its own.
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='stratus'\"" | grep -q 1 ||
    su postgres -c "psql -qc \"CREATE ROLE stratus LOGIN CREATEDB PASSWORD 'stratus'\""
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='stratus'\"" | grep -q 1 ||
    su postgres -c "createdb -O stratus stratus"
}

start_libvirt() {
  if libvirt_answers; then
    echo "==> libvirt: already running"; return
  fi
  echo "==> libvirt: starting"
  # libvirt 9.0 looks these up before it reads qemu.conf.
  getent group kvm >/dev/null || groupadd -r kvm
  getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
  getent passwd libvirt-qemu >/dev/null || useradd -r -g libvirt-qemu -G kvm -s /usr/sbin/nologin libvirt-qemu
  cat > /etc/libvirt/qemu.conf <<'CONF'
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
remember_owner = 0
CONF
  mkdir -p /var/log/libvirt /var/run/libvirt /var/lib/libvirt/images
  pgrep -x virtlogd >/dev/null || virtlogd -d
  pgrep -x libvirtd >/dev/null || libvirtd -d
  wait_for libvirt libvirt_answers
}

libvirt_answers() { virsh -c qemu:///system version >/dev/null 2>&1; }

for svc in "$@"; do
  "start_$svc"
done
