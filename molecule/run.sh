#!/usr/bin/env bash
# Runs Molecule for this collection on this kind of machine:
#   molecule/run.sh test -s default      (what `make molecule` runs)
#   molecule/run.sh converge -s default  (keep the hosts up; then verify / login / destroy)
# molecule/shared/env.sh sets up podman, the collection path and the repo's venv.
set -euo pipefail
# shellcheck source=molecule/shared/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/shared/env.sh"
export KMIPOPS_TEST_PREFIX=kmipops-mol-
# The lab has 127.0.10.0/24: Molecule can run while the lab is up.
export KMIPOPS_TEST_NET=127.0.11
# The lab's variable must not leak into Molecule: its destroy would delete the lab's state.
unset KMIPOPS_TEST_STATE_DIR
export ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-0}

cd "$kmipops_repo"
exec "$kmipops_venv/bin/molecule" "$@"
