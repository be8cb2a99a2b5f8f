#!/usr/bin/env bash
# Installs what Stratus needs on Debian 12 as root: Debian packages, then the
# Python virtualenv. Idempotent: each part is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  # database and broker
  postgresql redis-server
  # Python build for the venv (libvirt-python compiles against libvirt-dev)
  python3 python3-venv python3-dev gcc pkg-config
  # hypervisor (no libvirt-daemon-system: it pulls in systemd)
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev
  qemu-system-x86 qemu-utils
  # networking
  iproute2 dnsmasq-base nftables
  # config drives (genisoimage; its isoinfo reads them back in tests); curl
  # for the fake machines of the metadata proxy's tests
  genisoimage curl
  # guest image builder (Debian kernel + busybox userland, syslinux disk)
  busybox-static syslinux syslinux-common mtools dosfstools fdisk cpio
  # a DHCPv6 client (dhclient -6) for the fake machines of the IPv6 tests
  isc-dhcp-client
  # logging in to a guest over SSH (tests)
  openssh-client
  # consoles: noVNC's pages, which the console proxy serves at the URL
  # `openstack console url show --novnc` returns; headless Chromium and its
  # WebDriver open that URL in the console tests
  novnc chromium chromium-driver
  # the one-origin reverse proxy's sample (docs/nginx-stratus.conf) and its test
  nginx
  # Ceph RBD: a single-node cluster for the RBD image store's tests, the
  # rados/rbd Python bindings (Debian's; not on PyPI), QEMU's rbd driver
  ceph-mon ceph-osd ceph-common python3-rados python3-rbd qemu-block-extra
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  # On a machine with systemd, installing nginx starts Debian's default site
  # on port 80 and enables it at boot; Stratus only runs nginx with its own
  # configuration (docs/reverse-proxy.md), so a fresh install turns that off.
  if [[ " ${missing[*]} " == *" nginx "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now nginx || true
  fi
fi

# The venv is rebuilt only when requirements.txt changes.
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> Python packages (requirements.txt)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
fi

# Debian's rados/rbd modules fit the venv's Python 3.11: put them on its path
# (alone, not all of dist-packages).
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ ! -f "$site/debian-ceph.pth" ]; then
  mkdir -p .venv/debian-ceph
  ln -sf /usr/lib/python3/dist-packages/rados.cpython-311-x86_64-linux-gnu.so \
         /usr/lib/python3/dist-packages/rbd.cpython-311-x86_64-linux-gnu.so .venv/debian-ceph/
  echo "$PWD/.venv/debian-ceph" > "$site/debian-ceph.pth"
fi
