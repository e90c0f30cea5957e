#!/usr/bin/env bash
# Installs everything dnsnet needs on Debian 12 as root: the kernel tools, the test clients, the npm
# packages; builds it and puts `dnsnet` on the PATH. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then echo "setup: run as root (dnsnet makes namespaces, bridges and nftables rules)" >&2; exit 1; fi

# Podman, netavark, aardvark-dns, iptables (netavark 1.4's firewall), runc (crun refuses hybrid cgroups) and
# dnsmasq: the Podman drop-in's tests run Podman and Debian 12's netavark with dnsnet's aardvark-dns, against a
# local dnsmasq upstream. etcd-server: the binary the overlay networks' tests run their own clusters with (its
# packaged service is never started). prometheus: its promtool checks what GET /metrics serves (its service is
# never started either).
need=(iproute2 nftables iputils-ping util-linux hostname procps bind9-dnsutils musl-tools gcc attr busybox-static
  podman netavark aardvark-dns iptables dnsmasq-base runc etcd-server prometheus)
missing=()
for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  # No package may start a service here (podman enables podman.socket): policy-rc.d says no while we install.
  policy=/usr/sbin/policy-rc.d ours=
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && ours=1 && trap 'rm -f "$policy"' EXIT; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$ours" ]; then rm -f "$policy"; trap - EXIT; fi
  # ... nor at the next boot: the units these packages enable are disabled again (only when installed here).
  for p in "${missing[@]}"; do
    case $p in
      etcd-server) units=(etcd.service) ;;
      prometheus) units=(prometheus.service) ;;
      podman) units=(podman.socket podman.service podman-restart.service podman-auto-update.timer podman-auto-update.service) ;;
      *) units=() ;;
    esac
    if [ ${#units[@]} -gt 0 ]; then systemctl disable "${units[@]}" >/dev/null 2>&1 || true; fi
  done
fi

npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
npm link --no-audit --no-fund --loglevel=error >/dev/null
# The systemd unit, where systemd runs (elsewhere the daemon starts on demand, as always): installed, not
# enabled or started; `systemctl enable --now dnsnet` is the user's call.
if [ -d /run/systemd/system ]; then
  sed "s#@DNSNET@#$(command -v dnsnet)#" contrib/systemd/dnsnet.service >/etc/systemd/system/dnsnet.service
  systemctl daemon-reload
  echo "setup: /etc/systemd/system/dnsnet.service installed (systemctl enable --now dnsnet to run the daemon as a service)"
fi
echo "setup: dnsnet $(node dist/cli/dnsnet.cjs version 2>/dev/null | awk '{print $2}') installed as $(command -v dnsnet)"
