# shellcheck shell=bash
# The first control plane: kubeadm init (no CNI: the umbrella chart installs Spiderpool), then it
# publishes the join commands and the admin kubeconfig as SecureStrings under the cluster's SSM path.

ADMIN_CONF="${SPR_ROOT}/etc/kubernetes/admin.conf"

INIT_CONFIG="${SPR_ROOT}/etc/spiderpool-rdma/kubeadm-init.yaml"

# kubeadm writes admin.conf early (its kubeconfig phase precedes wait-control-plane), so only this step's marker
# says init completed. Reaching here means it did not: whatever an earlier attempt left is reset first.
kubeadm_init() {
  local version
  # Pin kubernetesVersion to the installed kubeadm's: left out, kubeadm looks up "stable-1" on dl.k8s.io.
  version="$(kubeadm version -o short)"
  [[ "${version}" =~ ^v${SPR_K8S_MINOR//./\\.}\.[0-9]+$ ]] || die "kubeadm ${version} is not a ${SPR_K8S_MINOR} release"
  sed -i "s/^kubernetesVersion: .*/kubernetesVersion: \"${version}\"/" "${INIT_CONFIG}"
  if [[ -e "${ADMIN_CONF}" || -e "${SPR_ROOT}/etc/kubernetes/manifests/kube-apiserver.yaml" ]]; then
    log "an earlier kubeadm init did not complete: resetting before running it again"
    kubeadm reset --force
  fi
  kubeadm init --config "${INIT_CONFIG}" --upload-certs
}

# Both credentials expire (a bootstrap token after its TTL, the uploaded certificates and their key after 2 h):
# spiderpool-rdma-join-refresh.timer runs refresh-join.sh hourly to publish fresh ones.
# Each parameter holds what kubeadm itself prints, so its form is kubeadm's (a trailing space after the CA hash,
# cmd/kubeadm/app/cmd/util/join.go); join.sh's pattern decides, and is applied here before anything is published.
publish_join() {
  local join key
  join="$(kubeadm token create --ttl 3h --print-join-command --kubeconfig "${ADMIN_CONF}")"
  check_join "${join}" worker
  printf '%s\n' "${join}" | ssm_put join-worker Standard
  if ((SPR_CONTROL_PLANES > 1)); then
    key="$(kubeadm init phase upload-certs --upload-certs --config "${INIT_CONFIG}" | tail -n 1)"
    [[ "${key}" =~ ^[a-f0-9]{64}$ ]] || die "kubeadm printed no certificate key"
    join="$(kubeadm token create --ttl 3h --print-join-command --certificate-key "${key}" --kubeconfig "${ADMIN_CONF}")"
    check_join "${join}" control-plane
    printf '%s\n' "${join}" | ssm_put join-control-plane Standard
  fi
}

# check_join COMMAND worker|control-plane: the consumer's pattern, with a certificate key exactly for control planes.
check_join() {
  [[ "$1" =~ ${SPR_JOIN_PATTERN} ]] || die "unexpected join command from kubeadm: ${1%% --token*}"
  if [[ "$2" == control-plane && -z "${BASH_REMATCH[5]}" || "$2" == worker && -n "${BASH_REMATCH[5]}" ]]; then
    die "kubeadm printed a join command that is not for a $2"
  fi
}

publish_kubeconfig() {
  # An admin kubeconfig with embedded certificates exceeds the 4 KB of a Standard parameter.
  ssm_put kubeconfig Advanced <"${ADMIN_CONF}"
}

join_refresh_timer() {
  systemctl daemon-reload
  systemctl enable --now spiderpool-rdma-join-refresh.timer
}

role_steps() {
  step kubeadm-init kubeadm_init
  step publish-join publish_join
  step publish-kubeconfig publish_kubeconfig
  step join-refresh-timer join_refresh_timer
}
