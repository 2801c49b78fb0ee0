#!/usr/bin/env bash
# Builds the base test-host image: debootstrap --variant=minbase of Debian bookworm with the
# packages listed in packages (next to this script), imported with `podman import`:
# systemd as PID 1 (CMD /sbin/init, STOPSIGNAL SIGRTMIN+3).
# Usage: mkbase.sh IMAGE_REF INPUTS_HASH   (called by tests/images/build.sh, which caches)
# The mirror is read at run time from this machine's apt sources (or KMIPOPS_DEBIAN_MIRROR);
# never write a mirror into the repository.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ref=$1
hash=$2
suite=bookworm
label=org.kmipops.inputs-hash

log() { printf '[images] %s\n' "$*" >&2; }

# The bookworm mirror of this machine: deb822 *.sources first, then one-line *.list files.
debian_mirror() {
  local f uri
  if [[ -n "${KMIPOPS_DEBIAN_MIRROR:-}" ]]; then
    echo "$KMIPOPS_DEBIAN_MIRROR"
    return
  fi
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    uri=$(awk -v suite="$suite" '
      function flush() {
        if (!found && types ~ /(^| )deb( |$)/ && suites ~ ("(^| )" suite "( |$)") && uris != "") {
          split(uris, u, " "); print u[1]; found = 1
        }
        types = ""; suites = ""; uris = ""
      }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]*#/ { next }
      tolower($1) == "types:" { $1 = ""; types = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "uris:" { $1 = ""; uris = $0 }
      END { flush() }' "$f")
    if [[ -n $uri ]]; then
      echo "$uri"
      return
    fi
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    uri=$(awk -v suite="$suite" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == suite) { print $i; exit }
      }' "$f")
    if [[ -n $uri ]]; then
      echo "$uri"
      return
    fi
  done
  echo "no '$suite' deb source found in /etc/apt; set KMIPOPS_DEBIAN_MIRROR" >&2
  return 1
}

command -v debootstrap >/dev/null || { echo "debootstrap is missing (apt-get install -y debootstrap)" >&2; exit 1; }
mirror=$(debian_mirror)
packages=$(grep -v -E '^[[:space:]]*(#|$)' "$here/packages" | paste -sd, -)
rootfs=$(mktemp -d /var/tmp/kmipops-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

log "base: debootstrap $suite from $mirror ($packages)"
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >&2
# Trim caches, and leave an empty machine-id so each container gets its own.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/*
: >"$rootfs/etc/machine-id"
# Units that make no sense in a container sharing the machine's network and clock.
ln -sf /dev/null "$rootfs/etc/systemd/system/systemd-timesyncd.service"
ln -sf /dev/null "$rootfs/etc/systemd/system/apt-daily.timer"
ln -sf /dev/null "$rootfs/etc/systemd/system/apt-daily-upgrade.timer"
log "base: podman import -> $ref"
tar --numeric-owner -C "$rootfs" -c . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL $label=$hash" \
  --message "kmipops.psmdb test base image ($suite minbase)" \
  - "$ref" >/dev/null
