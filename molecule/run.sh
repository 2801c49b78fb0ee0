#!/usr/bin/env bash
# Runs Molecule for this collection on this kind of machine:
#   molecule/run.sh test -s default      (what `make molecule` runs)
#   molecule/run.sh converge -s default  (keep the hosts up; then verify / login / destroy)
# It sources tests/images/podman-env.sh (CONTAINERS_CONF where the machine needs it), points
# Ansible at the checkout as kmipops.psmdb (.build/collections) and uses the repo's venv.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-$repo/.venv}
# shellcheck source=tests/images/podman-env.sh
source "$repo/tests/images/podman-env.sh"

mkdir -p "$repo/.build/collections/ansible_collections/kmipops"
ln -sfn "$repo" "$repo/.build/collections/ansible_collections/kmipops/psmdb"
# The checkout as kmipops.psmdb, then the test-only collections (containers.podman,
# community.crypto, ...) taken from the `ansible` wheel by tests/install_test_collections.py.
"$venv/bin/python" "$repo/tests/install_test_collections.py" "$repo/.build/test-collections"
export ANSIBLE_COLLECTIONS_PATH=${repo}/.build/collections:${repo}/.build/test-collections
export KMIPOPS_REPO_DIR=$repo
export KMIPOPS_TEST_PREFIX=kmipops-mol-
# The lab's variable must not leak into Molecule: its destroy would delete the lab's state.
unset KMIPOPS_TEST_STATE_DIR
export PATH=$venv/bin:$PATH
export ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-0}

cd "$repo"
exec "$venv/bin/molecule" "$@"
