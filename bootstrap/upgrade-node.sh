#!/usr/bin/env bash
# One step of a Kubernetes minor upgrade on this node, sent by `spiderpool-rdma upgrade` through SSM (ops/upgrade.py)
# in the order of kubeadm's procedure (kubernetes website, docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade.md):
# each step looks at what is done first, so that an upgrade stopped anywhere resumes by running it again.
#   versions              the cluster's version (kubeadm-config) and each node's kubelet   (on a control plane)
#   newest MINOR          the newest release of MINOR in its pkgs.k8s.io repository        (on a control plane)
#   kubeadm VERSION       apt's source moved to VERSION's minor, kubeadm VERSION installed
#   apply VERSION         kubeadm upgrade plan, then upgrade apply VERSION                  (the first control plane)
#   node VERSION          kubeadm upgrade node                                              (every other node)
#   kubelet VERSION       kubelet and kubectl VERSION installed, the kubelet restarted
#   drain NODE, uncordon NODE                                                              (on a control plane)
#   record VERSION        the version the nodes created from now on install                 (on a control plane)
set -euo pipefail

SPR_LIB="${SPR_LIB:-${SPR_ROOT:-}/usr/local/lib/spiderpool-rdma}"
# shellcheck source=/dev/null
source "${SPR_ROOT:-}/etc/spiderpool-rdma/node.env"
# shellcheck source=lib.sh
source "${SPR_LIB}/lib.sh"
# shellcheck source=common.sh
source "${SPR_LIB}/common.sh"

SPR_STEP="upgrade"
ADMIN_CONF="${SPR_ROOT}/etc/kubernetes/admin.conf"
kubectl_admin() { kubectl --kubeconfig "${ADMIN_CONF}" "$@"; }

# cluster_version: what kubeadm upgrade apply last set (ClusterConfiguration.kubernetesVersion in kubeadm-config).
cluster_version() {
  kubectl_admin -n kube-system get configmap kubeadm-config -o jsonpath='{.data.ClusterConfiguration}' |
    awk '$1 == "kubernetesVersion:" {gsub(/"/, "", $2); print $2}'
}

# install PACKAGE... VERSION: the packages at exactly VERSION, held again (the procedure's unhold, install, hold).
install() {
  local version="${*: -1}" packages=("${@:1:$#-1}") pinned=()
  for package in "${packages[@]}"; do
    pinned+=("${package}=${version#v}-*")
  done
  apt-mark unhold "${packages[@]}"
  apt_install "${pinned[@]}"
  apt-mark hold "${packages[@]}"
}

step_versions() {
  printf 'cluster %s\n' "$(cluster_version)"
  kubectl_admin get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.status.nodeInfo.kubeletVersion}{"\n"}{end}'
}

# apt-cache madison lists the repository's versions newest first ("1.37.2-1.1"); the release is before the revision.
step_newest() {
  kubernetes_repository "$1" >&2 # stdout is the answer
  apt-cache madison kubeadm | awk -F'|' 'NR == 1 {gsub(/ /, "", $2); sub(/-.*/, "", $2); print "v" $2}'
}

step_kubeadm() {
  [[ "$(kubeadm version -o short)" != "$1" ]] || return 0
  kubernetes_repository "$(cut -d. -f1,2 <<<"${1#v}")"
  install kubeadm "$1"
  [[ "$(kubeadm version -o short)" == "$1" ]] || die "kubeadm $(kubeadm version -o short) installed, not $1"
}

step_apply() {
  [[ "$(cluster_version)" != "$1" ]] || return 0
  kubeadm upgrade plan "$1"
  kubeadm upgrade apply "$1" --yes
}

step_node() { kubeadm upgrade node; }

# The restart always: a run stopped between the install and the restart leaves the old kubelet running.
step_kubelet() {
  if [[ "$(kubelet --version)" != "Kubernetes $1" ]]; then
    install kubelet kubectl "$1"
  fi
  systemctl daemon-reload
  systemctl restart kubelet
}

# Evictions respect PodDisruptionBudgets; DaemonSet pods (Spiderpool's agent, the device plugins) stay.
step_drain() { kubectl_admin drain "$1" --ignore-daemonsets --delete-emptydir-data --timeout=15m; }
step_uncordon() { kubectl_admin uncordon "$1"; }

step_record() {
  # shellcheck source=control-plane.sh
  source "${SPR_LIB}/control-plane.sh"
  [[ "$(kubeadm version -o short)" == "$1" ]] || die "kubeadm here is $(kubeadm version -o short), not $1"
  record_kubernetes_version
}

[[ $# -ge 1 && "$(type -t "step_$1")" == function ]] || die "usage: upgrade-node.sh STEP [ARG]"
"step_$1" "${@:2}"
