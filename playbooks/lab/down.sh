#!/usr/bin/env bash
# Tears the lab down (`make lab-destroy`): removes its containers and its state
# (.build/lab: certificates, passwords) and checks that nothing is left.
set -euo pipefail
# shellcheck source=playbooks/lab/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
lab_playbook "$lab_shared/destroy.yml"
