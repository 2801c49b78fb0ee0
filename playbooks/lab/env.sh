# shellcheck shell=bash
# Common settings of the lab scripts (sourced by up.sh and down.sh).
lab_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
lab_venv=${VENV:-$lab_repo/.venv}
# shellcheck source=tests/images/podman-env.sh
source "$lab_repo/tests/images/podman-env.sh"
mkdir -p "$lab_repo/.build/collections/ansible_collections/kmipops"
ln -sfn "$lab_repo" "$lab_repo/.build/collections/ansible_collections/kmipops/psmdb"
# The checkout as kmipops.psmdb, then the test-only collections (containers.podman,
# community.crypto, ...) taken from the `ansible` wheel by tests/install_test_collections.py.
"$lab_venv/bin/python" "$lab_repo/tests/install_test_collections.py" "$lab_repo/.build/test-collections"
export ANSIBLE_COLLECTIONS_PATH=${lab_repo}/.build/collections:${lab_repo}/.build/test-collections
export KMIPOPS_REPO_DIR=$lab_repo
export KMIPOPS_TEST_PREFIX=kmipops-lab-
export KMIPOPS_TEST_STATE_DIR=$lab_repo/.build/lab
export ANSIBLE_CALLBACKS_ENABLED=${ANSIBLE_CALLBACKS_ENABLED:-ansible.posix.profile_tasks}
export PATH=$lab_venv/bin:$PATH
export lab_inventory=$lab_repo/molecule/shared/inventory/hosts.yml
export lab_shared=$lab_repo/molecule/shared

lab_playbook() {
  "$lab_venv/bin/ansible-playbook" -i "$lab_inventory" "$@"
}
