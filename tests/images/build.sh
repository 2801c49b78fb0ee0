#!/usr/bin/env bash
# Builds the podman images of the test hosts, cached by a hash of their inputs:
#
#   localhost/kmipops-psmdb/base   debootstrap (minbase, bookworm) + podman import: systemd
#                                  as PID 1, python3, python3-venv, iproute2, procps, ...
#   localhost/kmipops-psmdb/psmdb  a PSMDB host: the PSMDB emulator as /usr/bin/mongod,
#                                  mongod.service, /etc/mongod.conf, user mongod, and the
#                                  collection's managed-host wheelhouse /opt/kmipops/wheelhouse
#   localhost/kmipops-psmdb/kmip   a PyKMIP server host: pykmip-server.service
#
# Each image is tagged :<hash of its inputs> (also stored as the label
# org.kmipops.inputs-hash) and :latest. When an image with the current hash exists, nothing
# is rebuilt: a cached run costs a few podman calls. Inputs: this script, podman-env.sh and the
# files under tests/images/<image>/, the emulator sources (psmdb), requirements.txt (psmdb
# wheelhouse), and the base image's hash for the derived images.
#
# Usage: tests/images/build.sh [--force] [--print-env]
#   --force      rebuild even when the hash matches
#   --print-env  print KMIPOPS_IMAGE_BASE=/..._PSMDB=/..._KMIP= lines (for scripts)
# Environment: KMIPOPS_DEBIAN_MIRROR (default: the first bookworm URI of this machine's apt
# sources), PYTHON (a Python 3.11 with pip, default .venv/bin/python: it downloads the wheels).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/images/podman-env.sh
source "$here/podman-env.sh"

prefix=localhost/kmipops-psmdb
suite=bookworm
label=org.kmipops.inputs-hash
python=${PYTHON:-$repo/.venv/bin/python}
force=0
print_env=0
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    --print-env) print_env=1 ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[images] %s\n' "$*" >&2; }

# sha256 (16 hex digits) over the extra words given on stdin, then the relative path and
# content of every file under the given repo paths (caches and bytecode excluded).
inputs_hash() {
  {
    cat
    (cd "$repo" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
      | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16
}

# The bookworm mirror of this machine, read from its apt sources (deb822 *.sources first,
# then one-line sources.list files). Never hard-code a mirror in the repository.
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

image_current() { # ref -> true when it exists (podman image exists is cheap)
  [[ $force -eq 0 ]] && podman image exists "$1"
}

tag_latest() { # name hash
  podman tag "$prefix/$1:$2" "$prefix/$1:latest"
}

build_base() {
  local hash=$1 ref=$prefix/base:$1 mirror rootfs packages
  if image_current "$ref"; then
    log "base: cached ($ref)"
    return
  fi
  command -v debootstrap >/dev/null || { echo "debootstrap is missing (apt-get install -y debootstrap)" >&2; exit 1; }
  mirror=$(debian_mirror)
  packages=$(grep -v -E '^[[:space:]]*(#|$)' "$here/base/packages" | paste -sd, -)
  rootfs=$(mktemp -d /var/tmp/kmipops-rootfs.XXXXXX)
  # shellcheck disable=SC2064 # expand now: the variable is local
  trap "rm -rf '$rootfs'" EXIT
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
  rm -rf "$rootfs"
  trap - EXIT
}

# A python able to run `pip wheel` for the image's Python (Debian 12: CPython 3.11).
check_python() {
  local version
  version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [[ $version != 3.11 ]]; then
    echo "$python is Python $version; the wheels must be built for the images' Python 3.11 (set PYTHON)" >&2
    exit 1
  fi
}

build_derived() { # name hash base_ref stage_fn
  local name=$1 hash=$2 base_ref=$3 stage_fn=$4 ref=$prefix/$1:$2 stage
  if image_current "$ref"; then
    log "$name: cached ($ref)"
    return
  fi
  check_python
  stage=$repo/.build/images/$name
  rm -rf "$stage"
  mkdir -p "$stage"
  "$stage_fn" "$stage"
  log "$name: podman build -> $ref"
  podman build --pull=never --network=none --layers=false \
    --build-arg "BASE=$base_ref" --label "$label=$hash" \
    -t "$ref" -f "$stage/Containerfile" "$stage" >&2
  rm -rf "$stage"
}

stage_psmdb() {
  local stage=$1
  cp "$here/psmdb/Containerfile" "$here/psmdb/mongod.service" "$here/psmdb/mongod.conf" \
    "$here/psmdb/mongod" "$here/psmdb/requirements-emulator.txt" "$stage/"
  cp "$repo/requirements.txt" "$stage/requirements-kmipops.txt"
  mkdir -p "$stage/emulator"
  (cd "$repo/tests/psmdb_emulator" && tar --exclude=__pycache__ --exclude='*.pyc' -cf - bin psmdb_emulator) \
    | tar -C "$stage/emulator" -xf -
  log "psmdb: pip wheel (emulator venv + kmipops wheelhouse)"
  "$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$stage/wheels-emulator" \
    -r "$stage/requirements-emulator.txt" >&2
  "$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$stage/wheelhouse" \
    -r "$stage/requirements-kmipops.txt" >&2
}

stage_kmip() {
  local stage=$1
  cp "$here/kmip/Containerfile" "$here/kmip/pykmip-server.service" "$here/kmip/server.conf" \
    "$here/kmip/requirements-pykmip.txt" "$stage/"
  log "kmip: pip wheel (PyKMIP server venv)"
  "$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$stage/wheels" \
    -r "$stage/requirements-pykmip.txt" >&2
}

command -v podman >/dev/null || { echo "podman is missing (apt-get install -y podman runc)" >&2; exit 1; }

base_hash=$(echo "base" | inputs_hash tests/images/build.sh tests/images/podman-env.sh tests/images/base)
psmdb_hash=$(echo "psmdb $base_hash" | inputs_hash tests/images/psmdb requirements.txt \
  tests/psmdb_emulator/bin tests/psmdb_emulator/psmdb_emulator)
kmip_hash=$(echo "kmip $base_hash" | inputs_hash tests/images/kmip)

start=$SECONDS
build_base "$base_hash"
tag_latest base "$base_hash"
build_derived psmdb "$psmdb_hash" "$prefix/base:$base_hash" stage_psmdb
tag_latest psmdb "$psmdb_hash"
build_derived kmip "$kmip_hash" "$prefix/base:$base_hash" stage_kmip
tag_latest kmip "$kmip_hash"
log "images ready in $((SECONDS - start)) s"

if [[ $print_env -eq 1 ]]; then
  echo "KMIPOPS_IMAGE_BASE=$prefix/base:$base_hash"
  echo "KMIPOPS_IMAGE_PSMDB=$prefix/psmdb:$psmdb_hash"
  echo "KMIPOPS_IMAGE_KMIP=$prefix/kmip:$kmip_hash"
fi
