#!/usr/bin/env bash
# Runs one suite of `make test` so that a failure does not stop the others.
#
# The suite's output goes to LOGDIR/SUITE.log as it is written (tail -f it), and when the suite
# ends it is printed to stdout as one block (CI shows only stdout), under a lock so that suites
# running at the same time do not interleave. Its exit code and duration go to
# LOGDIR/SUITE.result, which tests/suite-summary.sh reads at the end. Exits 0 once the result
# is recorded.
#
# usage: tests/run-suite.sh LOGDIR SUITE MAKE [MAKE-ARGS...]    (runs: MAKE [MAKE-ARGS...] SUITE)
set -uo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 LOGDIR SUITE MAKE [MAKE-ARGS...]" >&2
  exit 2
fi
logdir=$1 suite=$2
shift 2
log=$logdir/$suite.log
mkdir -p "$logdir"
rm -f "$logdir/$suite.result"

# one block at a time on stdout
say() {
  flock 9
  "$@"
} 9>>"$logdir/.stdout.lock"

say echo "=== suite $suite: started at $(date -u +%H:%M:%SZ), log: $log"
start=$(date +%s)
"$@" --output-sync=none "$suite" >"$log" 2>&1 </dev/null
rc=$?
duration=$(($(date +%s) - start))
printf '%d %d\n' "$rc" "$duration" >"$logdir/$suite.result"
if [ "$rc" -eq 0 ]; then
  verdict=passed
else
  verdict="FAILED (rc $rc)"
fi
print_block() {
  echo "=== suite $suite: output ($log) ==="
  cat "$log"
  echo "=== suite $suite: $verdict in ${duration} s ==="
}
say print_block
