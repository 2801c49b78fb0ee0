#!/usr/bin/env bash
# The embedded lab (`make lab`): two PyKMIP servers and a three-member PSMDB replica set with
# TLS and auth, as podman containers with systemd (same topology and playbooks as
# molecule/default), then the collection's main job, playbooks/enable_kmip_encryption.yml,
# run on it, the replica set started on the encrypted members and everything verified; it ends
# by rotating every member's master key with the collection's fleet playbook
# (playbooks/rotate_master_key.yml) under a writer and a sampler, judged from outside the
# collection (molecule/rotation/verify.yml, fleet_check.py), and prints what happened.
# Idempotent: run it again to re-apply. Tear down with playbooks/lab/down.sh (`make lab-destroy`).
set -euo pipefail
# shellcheck source=playbooks/lab/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
start=$SECONDS

# Everything the playbooks print is also kept in the state directory, to be searched for secrets.
mkdir -p "$KMIPOPS_TEST_STATE_DIR"
output=$KMIPOPS_TEST_STATE_DIR/up.log
: >"$output"
chmod 0600 "$output"
logged() { lab_playbook "$@" 2>&1 | tee -a "$output"; }

logged "$lab_shared/create.yml"
logged "$lab_shared/prepare.yml"
# The collection's main job, with the lab's settings from the inventory (group mongod).
logged "$lab_repo/playbooks/enable_kmip_encryption.yml"
logged "$lab_shared/start_replset.yml"
logged "$lab_shared/verify.yml"

# The rotation: the collection's fleet playbook, judged by the rotation scenario's verify
# (snapshot, writer and sampler, the playbook, snapshot, every check; no negative tests).
rotation_dir=$KMIPOPS_TEST_STATE_DIR/rotation
KMIPOPS_ROTATION_PLAYBOOK=playbooks/rotate_master_key.yml \
  KMIPOPS_ROTATION_PLAYBOOK_ARGS="-e kmip_rotation_report_path=$rotation_dir/rotation-report.json" \
  KMIPOPS_ROTATION_NEGATIVE_TESTS=false \
  logged "$lab_repo/molecule/rotation/verify.yml" \
  -e "kmipops_rotation_dir=$rotation_dir" -e "kmipops_rotation_tools=$lab_shared/files"

# The secrets the lab made (admin password, replica set keyFile, private keys) must not appear
# in what the playbooks printed.
secrets=$(mktemp)
trap 'rm -f "$secrets"' EXIT
{
  cat "$KMIPOPS_TEST_STATE_DIR/admin-password" "$KMIPOPS_TEST_STATE_DIR/mongod-keyfile"
  echo
  # one base64 line out of the middle of each private key
  for key in "$KMIPOPS_TEST_STATE_DIR"/pki/*.key; do sed -n 5p "$key"; done
} | grep -v '^$' >"$secrets"
if grep -q -F -f "$secrets" "$output"; then
  echo "lab: a secret (password, keyFile or private key) appears in the playbook output $output" >&2
  exit 1
fi

echo
# the role's own report, as the playbook printed it (its last play), then the harness's judgement
awk '/mongod_fleet : Show the report\]/ {on = 1} on {print} on && /^}/ {exit}' "$rotation_dir/rotation-main.log" || true
# shellcheck disable=SC2154  # kmipops_venv: molecule/shared/env.sh, through env.sh
"$kmipops_venv/bin/python" "$lab_shared/files/rotation_summary.py" --check "$rotation_dir/report-main.json" \
  --run "$rotation_dir/rotation-main.json"

cat <<TXT

kmipops.psmdb lab is up ($((SECONDS - start)) s). Hosts (podman containers, systemd inside,
network of this machine; names resolve inside the containers):
  kmip1   127.0.10.11:5696   container ${KMIPOPS_TEST_PREFIX}kmip1   PyKMIP (pykmip-server.service)
  kmip2   127.0.10.12:5696   container ${KMIPOPS_TEST_PREFIX}kmip2
  mongo1  127.0.10.21:27017  container ${KMIPOPS_TEST_PREFIX}mongo1  mongod.service, replica set rs0
  mongo2  127.0.10.22:27017  container ${KMIPOPS_TEST_PREFIX}mongo2
  mongo3  127.0.10.23:27017  container ${KMIPOPS_TEST_PREFIX}mongo3
Admin user: admin, password in $KMIPOPS_TEST_STATE_DIR/admin-password (mode 0600)
Certificates: $KMIPOPS_TEST_STATE_DIR/pki (CA: ca.crt)
Rotation:     $rotation_dir/rotation-report.json (the collection's report), report-main.json (the checks)
Inventory:    $lab_inventory

Try:
  podman exec -it ${KMIPOPS_TEST_PREFIX}mongo1 bash
  podman exec ${KMIPOPS_TEST_PREFIX}mongo1 cat /etc/mongod.conf
  podman exec ${KMIPOPS_TEST_PREFIX}mongo1 tail /var/log/mongodb/mongod.log
  source playbooks/lab/env.sh && lab_playbook playbooks/enable_kmip_encryption.yml
  source playbooks/lab/env.sh && lab_playbook playbooks/rotate_master_key.yml --check   # the waves, nothing touched
Tear down: make lab-destroy   (playbooks/lab/down.sh)
TXT
