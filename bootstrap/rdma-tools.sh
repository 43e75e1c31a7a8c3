# shellcheck shell=bash
# Userspace RDMA tools every RDMA mode needs on the host (perftest for bandwidth checks).

rdma_tools() {
  retry 5 10 apt-get update -q
  apt_install rdma-core ibverbs-utils perftest
}
