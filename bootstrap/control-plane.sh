# shellcheck shell=bash
# The first control plane: kubeadm init (no CNI: the umbrella chart installs Spiderpool), then it
# publishes the join commands and the admin kubeconfig as SecureStrings under the cluster's SSM path.

ADMIN_CONF="${SPR_ROOT}/etc/kubernetes/admin.conf"

kubeadm_init() {
  if [[ -e "${ADMIN_CONF}" ]]; then
    log "kubeadm init already ran (${ADMIN_CONF} exists)"
    return 0
  fi
  kubeadm init --config "${SPR_ROOT}/etc/spiderpool-rdma/kubeadm-init.yaml" --upload-certs
}

publish_join() {
  local join key
  join="$(kubeadm token create --ttl 24h --print-join-command --kubeconfig "${ADMIN_CONF}")"
  [[ "${join}" =~ ${SPR_JOIN_PATTERN} ]] || die "unexpected join command from kubeadm: ${join%% --token*}"
  printf '%s\n' "${join}" | ssm_put join-worker Standard
  if ((SPR_CONTROL_PLANES > 1)); then
    key="$(kubeadm init phase upload-certs --upload-certs --config "${SPR_ROOT}/etc/spiderpool-rdma/kubeadm-init.yaml" | tail -n 1)"
    [[ "${key}" =~ ^[a-f0-9]{64}$ ]] || die "kubeadm printed no certificate key"
    printf '%s --control-plane --certificate-key %s\n' "${join}" "${key}" | ssm_put join-control-plane Standard
  fi
  # An admin kubeconfig with embedded certificates exceeds the 4 KB of a Standard parameter.
  ssm_put kubeconfig Advanced <"${ADMIN_CONF}"
}

role_steps() {
  step kubeadm-init kubeadm_init
  step publish-join publish_join
}
