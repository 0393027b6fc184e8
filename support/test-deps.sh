#!/usr/bin/env bash
# The Debian packages `make test` needs beyond npm's: the real Mender clients (3.4 and mender-connect
# from Debian; 5.1's runtime libraries), Chromium for the status page, testssl.sh for the TLS scan,
# the packaging checks' shellcheck and systemd-analyze, debootstrap and qemu-user-static for the
# install tests on clean Debian roots, promtool (Debian's prometheus) for the monitoring files,
# libfaketime (faketime) for the clock-step tests.
# As root on Debian, installs what is missing (once: a second run finds them and does nothing);
# otherwise prints the command that would.
set -euo pipefail

need=()
# Client 5.1's runtime packages (../shared/clients/mender-5.1.0/README.md, "Runtime packages on a fresh Debian 12").
for p in libarchive13 libboost-filesystem1.74.0 libboost-log1.74.0 libboost-thread1.74.0 liblmdb0 libssl3 libdbus-1-3 libicu72 libxml2 dbus; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
has mender || need+=(mender-client)
has mender-artifact || need+=(mender-artifact)
has mender-connect || need+=(mender-connect)
has openssl || need+=(openssl)
has chromium || need+=(chromium)
has shellcheck || need+=(shellcheck)
# The attacker suite's TLS scan (spec/security/testssl.test.ts); the package's command is `testssl`.
has testssl || need+=(testssl.sh)
has systemd-analyze || need+=(systemd)
# promtool checks support/monitoring's rules and the dashboard's queries (spec/unit/monitoring.test.ts);
# `make dashboard-picture` runs the package's Prometheus server itself, on a port of its own.
has promtool || need+=(prometheus)
# The clock-step tests preload libfaketime into the gateway (spec/support/stepped-clock.ts).
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || need+=(faketime)
# The release-package test: clean Debian roots (debootstrap) and the arm64 binary under qemu-user.
has debootstrap || need+=(debootstrap)
has qemu-aarch64-static || need+=(qemu-user-static)

[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && has apt-get; then
  echo "make test: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
  # The prometheus package starts a Prometheus server; the tests want only its promtool.
  if [[ " ${need[*]} " == *" prometheus "* ]] && has systemctl; then systemctl disable --now prometheus 2>/dev/null || true; fi
else
  echo "make test: missing Debian packages (their tests will fail or skip with the reason): sudo apt-get install -y --no-install-recommends ${need[*]}"
fi
