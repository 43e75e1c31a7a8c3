# shellcheck shell=bash
# No RDMA on this cluster's workers.

rdma_steps() {
  log "rdma mode none: no RDMA setup"
}
