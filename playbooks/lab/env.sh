# shellcheck shell=bash
# Common settings of the lab scripts (sourced by up.sh and down.sh).
# shellcheck source=molecule/shared/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../molecule/shared/env.sh"
# kmipops_repo and kmipops_venv come from that file, which ansible-test's shellcheck (run on the
# collection without molecule/) cannot follow.
# shellcheck disable=SC2154
lab_repo=$kmipops_repo
export KMIPOPS_TEST_PREFIX=kmipops-lab-
export KMIPOPS_TEST_NET=127.0.10
export KMIPOPS_TEST_STATE_DIR=$lab_repo/.build/lab
export ANSIBLE_CALLBACKS_ENABLED=${ANSIBLE_CALLBACKS_ENABLED:-ansible.posix.profile_tasks}
export lab_inventory=$lab_repo/molecule/shared/inventory/hosts.yml
export lab_shared=$lab_repo/molecule/shared

lab_playbook() {
  # shellcheck disable=SC2154
  "$kmipops_venv/bin/ansible-playbook" -i "$lab_inventory" "$@"
}
