#!/usr/bin/env bash
# Installs the Debian packages the tests and the lab need when they are missing: podman, runc and
# debootstrap (test host images and containers), git, make, shellcheck (ansible-test sanity runs
# it when present) and venv support for python3.
# Does nothing when everything is there; needs root (apt) otherwise.
set -euo pipefail
# Every systemd container takes several inotify instances of the same (root) user: with the
# default 128, the 15th or so container boots "degraded" and Molecule's create fails. Raise the
# limit when it is low and we may (the tests start up to ~20 containers at once).
limit=/proc/sys/fs/inotify/max_user_instances
if [ "$(id -u)" -eq 0 ] && [ -w "$limit" ] && [ "$(cat "$limit")" -lt 1024 ]; then
  echo 1024 >"$limit" || echo "could not raise $limit (containers may boot degraded)" >&2
fi
need=()
for cmd in podman runc debootstrap git make shellcheck; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("$cmd")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${need[*]} (run as root, or: apt-get install ${need[*]})" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${need[@]}"
