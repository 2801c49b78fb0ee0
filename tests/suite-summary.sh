#!/usr/bin/env bash
# The end of `make test`: one table of every suite (status, exit code, duration, pytest counts), the
# failed ones named again in the last lines, and exit 1 when any suite failed or left no result
# (tests/run-suite.sh writes LOGDIR/SUITE.result).
#
# usage: tests/suite-summary.sh LOGDIR SUITE...
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 LOGDIR SUITE..." >&2
  exit 2
fi
logdir=$1
shift
passed=0
failed=()
# pytest's closing line, e.g. "===== 184 passed, 2 skipped in 26.11s (0:00:26) ====="
pytest_counts='^=* ?(([0-9]+ [a-z]+,? )+|no tests ran )in [0-9.]+s( \([0-9:]+\))? ?=*$'
echo
echo "==================== make test summary ===================="
printf '%-22s %-9s %3s %8s  %s\n' suite status rc duration "tests (pytest's last line)"
for suite in "$@"; do
  rc=- duration=- status=
  if [ -r "$logdir/$suite.result" ]; then
    read -r rc duration <"$logdir/$suite.result"
  fi
  if [ "$rc" = 0 ]; then
    status=passed
    passed=$((passed + 1))
  elif [ "$rc" = - ]; then
    status="no result"
    failed+=("$suite (did not finish)")
  else
    status=FAILED
    failed+=("$suite (rc $rc, ${duration} s)")
  fi
  [ "$duration" = - ] || duration="${duration} s"
  counts=$(grep -s -E "$pytest_counts" "$logdir/$suite.log" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//' || true)
  printf '%-22s %-9s %3s %8s  %s\n' "$suite" "$status" "$rc" "$duration" "$counts"
done
echo "logs: $logdir/<suite>.log"
echo "==========================================================="
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED suite: %s\n' "${failed[@]}"
fi
echo "suites: $passed passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
