#!/usr/bin/env bash
# Run hourly by spiderpool-rdma-join-refresh.timer on control-plane-0: publishes a fresh bootstrap token and (HA) a
# fresh certificate key, so that a node added or replaced later, or one whose join failed, finds valid ones.
set -euo pipefail

SPR_LIB="${SPR_LIB:-${SPR_ROOT:-}/usr/local/lib/spiderpool-rdma}"
# shellcheck source=/dev/null
source "${SPR_ROOT:-}/etc/spiderpool-rdma/node.env"
# shellcheck source=lib.sh
source "${SPR_LIB}/lib.sh"
# shellcheck source=/dev/null
source "${SPR_LIB}/role.sh"

SPR_STEP=join-refresh
publish_join >>"${SPR_LOG_DIR}/join-refresh.log" 2>&1
log "published fresh join credentials"
