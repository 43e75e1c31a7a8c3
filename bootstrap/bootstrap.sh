#!/usr/bin/env bash
# Turns this instance into a kubeadm node. Run by spiderpool-rdma-bootstrap.service at every boot until
# it completes: finished steps are skipped, so a reboot (EFA installer) resumes where it stopped.
set -euo pipefail

SPR_LIB="${SPR_LIB:-${SPR_ROOT:-}/usr/local/lib/spiderpool-rdma}"
# shellcheck source=/dev/null
source "${SPR_ROOT:-}/etc/spiderpool-rdma/node.env"
# shellcheck source=lib.sh
source "${SPR_LIB}/lib.sh"
# shellcheck source=common.sh
source "${SPR_LIB}/common.sh"
# shellcheck source=rdma-tools.sh
source "${SPR_LIB}/rdma-tools.sh"
# shellcheck source=/dev/null
source "${SPR_LIB}/rdma.sh"
# shellcheck source=/dev/null
source "${SPR_LIB}/role.sh"

main() {
  mkdir -p "${SPR_STATE}/done" "${SPR_LOG_DIR}"
  chmod 700 "${SPR_STATE}" "${SPR_LOG_DIR}"
  if [[ -e "${SPR_STATE}/done/bootstrap" ]]; then
    log "bootstrap already complete"
    return 0
  fi
  log "bootstrap of ${SPR_NODE_NAME} (${SPR_ROLE}, rdma ${SPR_RDMA}) starts"
  # One deadline for this run's waiting on the first control plane (the version it records, the join command) and
  # retrying a join; a restart of the unit starts a new one.
  SPR_JOIN_DEADLINE=$(($(date +%s) + SPR_JOIN_TIMEOUT))
  SPR_STEP=underlay-interface underlay_interface
  SPR_STEP=guard-pod-addresses guard_pod_addresses
  step apt-settings apt_settings
  step kernel kernel
  step aws-cli aws_cli
  step containerd containerd_runtime
  step imds-guard imds_guard
  step kubernetes-packages kubernetes_packages
  step ecr-credential-provider ecr_credential_provider
  rdma_steps
  role_steps
  SPR_STEP=bootstrap
  touch "${SPR_STATE}/done/bootstrap"
  printf 'ready\n' >"${SPR_STATE}/status"
  log "bootstrap complete"
}

main "$@"
