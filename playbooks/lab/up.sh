#!/usr/bin/env bash
# The embedded lab (`make lab`): two PyKMIP servers and a three-member PSMDB replica set with
# TLS and auth, as podman containers with systemd (same topology and playbooks as
# molecule/default), then the collection's main job, playbooks/enable_kmip_encryption.yml,
# run on it, the replica set started on the encrypted members and everything verified.
# Idempotent: run it again to re-apply. Tear down with playbooks/lab/down.sh (`make lab-destroy`).
set -euo pipefail
# shellcheck source=playbooks/lab/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
start=$SECONDS

lab_playbook "$lab_shared/create.yml"
lab_playbook "$lab_shared/prepare.yml"
# The collection's main job, with the lab's settings from the inventory (group mongod).
lab_playbook "$lab_repo/playbooks/enable_kmip_encryption.yml"
lab_playbook "$lab_shared/start_replset.yml"
lab_playbook "$lab_shared/verify.yml"

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
Inventory:    $lab_inventory

Try:
  podman exec -it ${KMIPOPS_TEST_PREFIX}mongo1 bash
  podman exec ${KMIPOPS_TEST_PREFIX}mongo1 cat /etc/mongod.conf
  podman exec ${KMIPOPS_TEST_PREFIX}mongo1 tail /var/log/mongodb/mongod.log
  source playbooks/lab/env.sh && lab_playbook playbooks/enable_kmip_encryption.yml
Tear down: make lab-destroy   (playbooks/lab/down.sh)
TXT
