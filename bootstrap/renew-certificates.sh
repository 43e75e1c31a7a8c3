#!/usr/bin/env bash
# Run daily by spiderpool-rdma-renew-certificates.timer on every control plane: kubeadm's certificates last a year, and
# nothing else renews them (control-plane.sh, renew_certificates).
set -euo pipefail

SPR_LIB="${SPR_LIB:-${SPR_ROOT:-}/usr/local/lib/spiderpool-rdma}"
# shellcheck source=/dev/null
source "${SPR_ROOT:-}/etc/spiderpool-rdma/node.env"
# shellcheck source=lib.sh
source "${SPR_LIB}/lib.sh"
# shellcheck source=control-plane.sh
source "${SPR_LIB}/control-plane.sh"

SPR_STEP="renew-certificates"
renew_certificates >>"${SPR_LOG_DIR}/renew-certificates.log" 2>&1
