#!/usr/bin/env bash
# Builds the podman images of the test hosts, cached by a hash of their inputs:
#
#   localhost/kmipops-psmdb/base   base/mkbase.sh: debootstrap (minbase, bookworm) + podman
#                                  import: systemd as PID 1, python3, python3-venv, ...
#   localhost/kmipops-psmdb/psmdb  a PSMDB host: the PSMDB emulator as /usr/bin/mongod,
#                                  mongod.service, /etc/mongod.conf, user mongod, and the
#                                  collection's managed-host wheelhouse /opt/kmipops/wheelhouse
#   localhost/kmipops-psmdb/kmip   a PyKMIP server host: pykmip-server.service
#
# Each image is tagged :<hash of its inputs> (also stored as the label
# org.kmipops.inputs-hash) and :latest. When an image with the current hash exists, nothing
# is rebuilt: a cached run costs a few podman calls. Inputs: base: tests/images/base/;
# psmdb and kmip: the base hash, this script, tests/images/<image>/, and for psmdb the emulator
# sources and the collection's managed-host requirements (roles/kmip_prereqs).
#
# Usage: tests/images/build.sh [--force] [--print-env]
#   --force      rebuild even when the hash matches
#   --print-env  print KMIPOPS_IMAGE_BASE=/..._PSMDB=/..._KMIP= lines (for scripts)
# Environment: KMIPOPS_DEBIAN_MIRROR (default: the first bookworm URI of this machine's apt
# sources), PYTHON (a Python 3.11 with pip, default .venv/bin/python: it builds the wheels).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/images/podman-env.sh
source "$here/podman-env.sh"

prefix=localhost/kmipops-psmdb
label=org.kmipops.inputs-hash
python=${PYTHON:-$repo/.venv/bin/python}
force=0
print_env=0
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    --print-env) print_env=1 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[images] %s\n' "$*" >&2; }

# sha256 (16 hex digits) over the words on stdin, then the relative path and content of every
# file under the given repo paths (caches and bytecode excluded).
inputs_hash() {
  {
    cat
    (cd "$repo" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
      | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16
}

image_current() { # ref -> true when it exists and --force was not given
  [[ $force -eq 0 ]] && podman image exists "$1"
}

tag_latest() { # name hash
  podman tag "$prefix/$1:$2" "$prefix/$1:latest"
}

# A Python able to build wheels for the images' Python (Debian 12: CPython 3.11).
check_python() {
  local version
  version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [[ $version != 3.11 ]]; then
    echo "$python is Python $version; the wheels must be built for the images' Python 3.11 (set PYTHON)" >&2
    exit 1
  fi
}

build_base() {
  local hash=$1 ref=$prefix/base:$1
  if image_current "$ref"; then
    log "base: cached ($ref)"
    return
  fi
  "$here/base/mkbase.sh" "$ref" "$hash"
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

wheels() { # requirements dest
  "$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$2" -r "$1" >&2
}

stage_psmdb() {
  local stage=$1
  cp "$here/psmdb/Containerfile" "$here/psmdb/mongod.service" "$here/psmdb/mongod.conf" \
    "$here/psmdb/mongod" "$here/psmdb/requirements-emulator.txt" "$stage/"
  cp "$kmipops_requirements" "$stage/requirements-kmipops.txt"
  mkdir -p "$stage/emulator"
  (cd "$repo/tests/psmdb_emulator" && tar --exclude=__pycache__ --exclude='*.pyc' -cf - bin psmdb_emulator) \
    | tar -C "$stage/emulator" -xf -
  log "psmdb: pip wheel (emulator venv + kmipops wheelhouse)"
  wheels "$stage/requirements-emulator.txt" "$stage/wheels-emulator"
  wheels "$stage/requirements-kmipops.txt" "$stage/wheelhouse"
}

stage_kmip() {
  local stage=$1
  cp "$here/kmip/Containerfile" "$here/kmip/pykmip-server.service" "$here/kmip/server.conf" \
    "$here/kmip/requirements-pykmip.txt" "$stage/"
  log "kmip: pip wheel (PyKMIP server venv)"
  wheels "$stage/requirements-pykmip.txt" "$stage/wheels"
}

command -v podman >/dev/null || { echo "podman is missing (apt-get install -y podman runc)" >&2; exit 1; }

# What roles/kmip_prereqs installs on a managed host (the wheelhouse must cover it).
kmipops_requirements=$repo/roles/kmip_prereqs/files/requirements.txt
[[ -f $kmipops_requirements ]] || kmipops_requirements=$repo/requirements.txt

base_hash=$(echo "base" | inputs_hash tests/images/base)
psmdb_hash=$(echo "psmdb $base_hash" | inputs_hash tests/images/build.sh tests/images/psmdb \
  "${kmipops_requirements#"$repo/"}" tests/psmdb_emulator/bin tests/psmdb_emulator/psmdb_emulator)
kmip_hash=$(echo "kmip $base_hash" | inputs_hash tests/images/build.sh tests/images/kmip)

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
