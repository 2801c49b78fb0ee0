# shellcheck shell=bash
# Environment shared by molecule/run.sh and the lab scripts (playbooks/lab/env.sh): podman set
# up for this machine (tests/images/podman-env.sh), the checkout visible to Ansible as
# kmipops.psmdb (.build/collections), the test-only collections (containers.podman,
# community.crypto, ...) taken from the `ansible` wheel by tests/install_test_collections.py,
# and the repo's venv first on PATH.
kmipops_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kmipops_venv=${VENV:-$kmipops_repo/.venv}
# shellcheck source=tests/images/podman-env.sh
source "$kmipops_repo/tests/images/podman-env.sh"
mkdir -p "$kmipops_repo/.build/collections/ansible_collections/kmipops"
ln -sfn "$kmipops_repo" "$kmipops_repo/.build/collections/ansible_collections/kmipops/psmdb"
"$kmipops_venv/bin/python" "$kmipops_repo/tests/install_test_collections.py" "$kmipops_repo/.build/test-collections"
export ANSIBLE_COLLECTIONS_PATH=${kmipops_repo}/.build/collections:${kmipops_repo}/.build/test-collections
export KMIPOPS_REPO_DIR=$kmipops_repo
export PATH=$kmipops_venv/bin:$PATH
# Some machines set it; then every Ansible run recompiles ansible-core and is several times slower.
unset PYTHONDONTWRITEBYTECODE
