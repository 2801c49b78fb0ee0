# shellcheck shell=bash
# Sourced by the test scripts (build.sh, molecule/run.sh, playbooks/lab/*.sh) before any podman
# call. Exports CONTAINERS_CONF=<this dir>/containers.conf when this machine needs it:
#   - CAP_SYS_RESOURCE (capability 24) is missing from the bounding set, so the OCI runtime
#     cannot set the default ulimits podman asks for, or
#   - /sys/fs/cgroup is not a pure cgroup v2 hierarchy (hybrid or v1), where crun and the
#     systemd cgroup manager do not work for systemd containers.
# KMIPOPS_CONTAINERS_CONF=always|never|auto (default auto) overrides the detection; an already
# exported CONTAINERS_CONF is left alone.

kmipops_podman_needs_conf() {
  local capbnd
  capbnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  if (( ((16#${capbnd:-0}) >> 24 & 1) == 0 )); then
    return 0
  fi
  if [[ ! -f /sys/fs/cgroup/cgroup.controllers ]]; then
    return 0
  fi
  return 1
}

kmipops_podman_env() {
  local here conf mode
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  conf=$here/containers.conf
  mode=${KMIPOPS_CONTAINERS_CONF:-auto}
  if [[ -n "${CONTAINERS_CONF:-}" ]]; then
    return 0
  fi
  case $mode in
    always) export CONTAINERS_CONF=$conf ;;
    never) ;;
    auto)
      if kmipops_podman_needs_conf; then
        export CONTAINERS_CONF=$conf
      fi
      ;;
    *)
      echo "KMIPOPS_CONTAINERS_CONF must be always, never or auto (got '$mode')" >&2
      return 1
      ;;
  esac
}

kmipops_podman_env
