#!/usr/bin/env bash
# Runs the default scenario's rolling restart (molecule/shared/rolling_restart.yml: a changed KMIP
# connect timeout, members restarted one at a time through roles/mongod_member) N times on one
# set of hosts, each time under a writer (w:majority inserts every 0.1 s from the controller),
# and reports per run: the playbook's result, whether the guard refused a member ("other members
# are not healthy"), the writes acknowledged and failed, the longest gap between two
# acknowledgements, and whether every acknowledged write is on every member (fleet_check.py).
#
#   flock /tmp/kmipops-lock-molecule molecule/repeat_rolling_restart.sh 10 [--keep|--reuse]
#
# The scenario is created once (destroy, create, prepare, converge) and destroyed at the end
# unless --keep; --reuse runs on the hosts a previous --keep (or interrupted) run left up. Needs the test images (make images). Logs, writer records and the summary go to
# .build/repeat-rolling-restart (KMIPOPS_REPEAT_DIR). Exit status: 0 when every run passed.
set -euo pipefail
runs=${1:?usage: $0 N [--keep]}
keep=${2:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=molecule/shared/env.sh
source "$here/shared/env.sh"
# The default scenario's hosts, or (KMIPOPS_REPEAT_PREFIX/KMIPOPS_REPEAT_NET, with its own
# MOLECULE_EPHEMERAL_DIRECTORY) a second copy of them beside a `make molecule` run, e.g.
#   KMIPOPS_REPEAT_PREFIX=kmipops-rep- KMIPOPS_REPEAT_NET=127.0.17 \
#   MOLECULE_EPHEMERAL_DIRECTORY=$PWD/.build/molecule-repeat flock /tmp/kmipops-lock-molecule-repeat ...
export KMIPOPS_TEST_PREFIX=${KMIPOPS_REPEAT_PREFIX:-kmipops-mol-}
export KMIPOPS_TEST_NET=${KMIPOPS_REPEAT_NET:-127.0.11}
unset KMIPOPS_TEST_STATE_DIR
export ANSIBLE_FORCE_COLOR=0
cd "$kmipops_repo"
# Molecule's state directory of the scenario (PKI, admin password): what the inventory reads.
# Named here, so that this script and every molecule command below agree on it.
eph=${MOLECULE_EPHEMERAL_DIRECTORY:-$kmipops_repo/.build/molecule-default}
export MOLECULE_EPHEMERAL_DIRECTORY=$eph MOLECULE_PROJECT_DIRECTORY=$kmipops_repo

if [ "$keep" != --reuse ]; then
  molecule destroy -s default >/dev/null
  molecule create -s default
  molecule prepare -s default
  molecule converge -s default
fi
[ -f "$eph/admin-password" ] || { echo "no scenario state in $eph" >&2; exit 2; }
KMIPOPS_ADMIN_PASSWORD=$(cat "$eph/admin-password")
export KMIPOPS_ADMIN_PASSWORD
inventory=$here/shared/inventory/hosts.yml
tools=$here/shared/files
python=$kmipops_venv/bin/python
# outside Molecule's state directory, which destroy removes
work=${KMIPOPS_REPEAT_DIR:-$kmipops_repo/.build/repeat-rolling-restart}
rm -rf "$work"
ansible-playbook -i "$inventory" "$here/rotation/describe.yml" -e "kmipops_rotation_dir=$work" >/dev/null

failures=0
summary=$work/summary.txt
: >"$summary"
for i in $(seq 1 "$runs"); do
  label=run$i
  "$python" "$tools/fleet_writer.py" start --fleet "$work/fleet.json" --dir "$work" --label "$label" --interval 0.1
  started=$(date +%s)
  if ansible-playbook -i "$inventory" "$here/shared/rolling_restart.yml" >"$work/$label.log" 2>&1; then
    play=ok
  else
    play=FAILED
  fi
  seconds=$(($(date +%s) - started))
  writes=$("$python" "$tools/fleet_writer.py" stop --dir "$work" --label "$label" | tr -d '\n')
  if "$python" "$tools/fleet_check.py" --fleet "$work/fleet.json" --dir "$work" --writer "$label" \
    --checks writes --max-write-errors 0 --min-acks 20 --report "$work/$label-check.json" >/dev/null 2>&1; then
    check=ok
  else
    check=FAILED
  fi
  guard=no
  grep -q 'other members are not healthy' "$work/$label.log" && guard=yes
  line="$label: playbook $play (${seconds}s), guard refused: $guard, writes check $check, writer $writes"
  echo "$line" | tee -a "$summary"
  if [ "$play" != ok ] || [ "$check" != ok ]; then
    failures=$((failures + 1))
    grep -E 'fatal:|FAILED!|msg' "$work/$label.log" | tail -5 || true
  fi
done
echo "failures: $failures of $runs (logs in $work)" | tee -a "$summary"
if [ "$keep" != --keep ] && [ "$keep" != --reuse ]; then
  molecule destroy -s default >/dev/null
fi
[ "$failures" -eq 0 ]
