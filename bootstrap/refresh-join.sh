#!/usr/bin/env bash
# Run hourly by spiderpool-rdma-join-refresh.timer on every control plane: the first live one publishes a fresh
# bootstrap token and, while control planes are missing, a fresh certificate key, so that a node added or replaced
# later, or one whose join failed, finds valid ones; any of them withdraws the control-plane ones once none is missing.
set -euo pipefail

SPR_LIB="${SPR_LIB:-${SPR_ROOT:-}/usr/local/lib/spiderpool-rdma}"
# shellcheck source=/dev/null
source "${SPR_ROOT:-}/etc/spiderpool-rdma/node.env"
# shellcheck source=lib.sh
source "${SPR_LIB}/lib.sh"
# shellcheck source=control-plane.sh
source "${SPR_LIB}/control-plane.sh"

SPR_STEP="join-refresh"
refresh_join_credentials >>"${SPR_LOG_DIR}/join-refresh.log" 2>&1
log "join credentials refreshed"
