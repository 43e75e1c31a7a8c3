# shellcheck shell=bash
# What every control plane does, control-plane-0 and those that join: record the cluster's Kubernetes version, keep
# the worker join command fresh, publish the control-plane join credentials only while control planes are missing
# and withdraw them once all have joined, publish the admin kubeconfig. Everything is published as SecureStrings
# under the cluster's SSM path (lib.sh, ssm_put); refresh-join.sh runs refresh_join_credentials hourly.

ADMIN_CONF="${SPR_ROOT}/etc/kubernetes/admin.conf"

# record_kubernetes_version: publish the installed kubeadm's exact version (vX.Y.Z) as the cluster's: every node that
# joins later installs exactly it (common.sh, kubernetes_packages). An upgrade records its new version the same way.
record_kubernetes_version() {
  local version
  version="$(kubeadm version -o short)"
  [[ "${version}" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "kubeadm reports no release version: '${version}'"
  printf '%s\n' "${version}" | ssm_put kubernetes-version Standard
}

# live_control_planes: the names of the control-plane nodes whose kubelet posts its status, sorted. A node waiting for
# the pod network (Ready False) is live; one whose kubelet stopped posting (Ready Unknown: a dead or replaced
# instance) is missing.
live_control_planes() {
  kubectl --kubeconfig "${ADMIN_CONF}" get nodes -l node-role.kubernetes.io/control-plane -o json | python3 -c '
import json, sys
for node in json.load(sys.stdin)["items"]:
    ready = [c["status"] for c in node["status"].get("conditions", []) if c["type"] == "Ready"]
    if ready != ["Unknown"]:
        print(node["metadata"]["name"])
' | sort
}

# refresh_join_credentials: the control-plane join credentials go once every configured control plane is live (any
# control plane withdraws them, so the last one to join does at once). The first live control plane by name, and only
# it, publishes a fresh worker join command and, while control planes are missing (at first, or when one was
# replaced), the control-plane join credentials; when it stops posting status the next one takes over.
refresh_join_credentials() {
  local live first count
  live="$(live_control_planes)"
  first="$(head -n 1 <<<"${live}")"
  count="$(grep -c . <<<"${live}" || true)"
  if ((count >= SPR_CONTROL_PLANES)); then
    withdraw_control_plane_join
  fi
  if [[ "${first}" != "${SPR_NODE_NAME}" ]]; then
    log "${first:-no live control plane} refreshes the join credentials, not ${SPR_NODE_NAME}"
    return 0
  fi
  publish_worker_join
  if ((count < SPR_CONTROL_PLANES)); then
    log "${count} of ${SPR_CONTROL_PLANES} control planes are live: publishing the control-plane join credentials"
    publish_control_plane_join
  fi
}

# Each join command is what kubeadm itself prints, so its form is kubeadm's (a trailing space after the CA hash,
# cmd/kubeadm/app/cmd/util/join.go); join.sh's pattern decides, and is applied here before anything is published.
# Tokens live 3 h, the refresh runs hourly.
publish_worker_join() {
  local join
  join="$(kubeadm token create --ttl 3h --print-join-command --kubeconfig "${ADMIN_CONF}")"
  check_join "${join}" worker
  printf '%s\n' "${join}" | ssm_put join-worker Standard
}

# What a control plane needs to join: the API servers' EncryptionConfiguration (this one's, current after a rotation),
# published first, and the join command whose certificate key decrypts the cluster's certificate authorities, which
# upload-certs puts in the kubeadm-certs Secret (it lives 2 h; kubeadm prints the key last). Only the version is
# configured: kubeadm would look it up online.
publish_control_plane_join() {
  local config key join
  ssm_put encryption-config Standard <"${SPR_ROOT}${SPR_ENCRYPTION_CONFIG}"
  config="$(mktemp "${SPR_STATE}/upload-certs.XXXXXX")"
  printf 'apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: "%s"\n' \
    "$(kubeadm version -o short)" >"${config}"
  key="$(kubeadm init phase upload-certs --upload-certs --config "${config}" | tail -n 1)"
  rm -f "${config}"
  [[ "${key}" =~ ^[a-f0-9]{64}$ ]] || die "kubeadm printed no certificate key"
  join="$(kubeadm token create --ttl 3h --print-join-command --certificate-key "${key}" --kubeconfig "${ADMIN_CONF}")"
  check_join "${join}" control-plane
  printf '%s\n' "${join}" | ssm_put join-control-plane Standard
}

# Nothing that lets a node join as a control plane stays behind: the kubeadm-certs Secret (the CA keys) is deleted
# and the parameters hold the placeholder again (each written only when it does not already).
withdraw_control_plane_join() {
  kubectl --kubeconfig "${ADMIN_CONF}" -n kube-system delete secret kubeadm-certs --ignore-not-found
  if [[ "$(ssm_get join-control-plane)" != pending ]]; then
    printf 'pending' | ssm_put join-control-plane Standard
    log "all ${SPR_CONTROL_PLANES} control planes are live: withdrew the control-plane join credentials"
  fi
  [[ "$(ssm_get encryption-config)" == pending ]] || printf 'pending' | ssm_put encryption-config Standard
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

# The leaf certificates kubeadm made (its CertificateValidityPeriod: a year): every certificate under pki/ but the
# certificate authorities, and the client certificates embedded in the control plane's kubeconfig files. Prints those
# that expire within SPR_CERT_RENEW_DAYS.
expiring_certificates() {
  local within=$((SPR_CERT_RENEW_DAYS * 86400)) cert conf
  for cert in "${SPR_ROOT}"/etc/kubernetes/pki/*.crt "${SPR_ROOT}"/etc/kubernetes/pki/etcd/*.crt; do
    [[ "$(basename "${cert}")" == ca.crt || "$(basename "${cert}")" == front-proxy-ca.crt ]] && continue
    openssl x509 -noout -checkend "${within}" -in "${cert}" >/dev/null || echo "${cert#"${SPR_ROOT}"}"
  done
  for conf in admin super-admin controller-manager scheduler; do
    conf="${SPR_ROOT}/etc/kubernetes/${conf}.conf"
    [[ -e "${conf}" ]] || continue
    awk '$1 == "client-certificate-data:" {print $2}' "${conf}" | base64 -d |
      openssl x509 -noout -checkend "${within}" >/dev/null || echo "${conf#"${SPR_ROOT}"}"
  done
}

# renew_certificates: run daily by spiderpool-rdma-renew-certificates.timer. Once a certificate expires within
# SPR_CERT_RENEW_DAYS (a week less on each further control plane, so that no two restart on the same day), kubeadm
# renews them all; etcd, the API server, the controller manager and the scheduler, which read them only at start,
# restart one after the other; the admin kubeconfig in SSM is republished (its client certificate is new).
renew_certificates() {
  local expiring component
  expiring="$(expiring_certificates)"
  if [[ -z "${expiring}" ]]; then
    log "no certificate expires within ${SPR_CERT_RENEW_DAYS} days"
    return 0
  fi
  log "renewing the certificates: $(tr '\n' ' ' <<<"${expiring}")expire within ${SPR_CERT_RENEW_DAYS} days"
  kubeadm certs renew all
  for component in etcd kube-apiserver kube-controller-manager kube-scheduler; do
    restart_static_pod "${component}"
  done
  publish_kubeconfig
}

# restart_static_pod NAME: stop its container; the kubelet starts a new one (a static pod restarts always). The next
# component goes down only once this one runs again, so that etcd and the API stay up on the other control planes.
restart_static_pod() {
  local crictl=(crictl --runtime-endpoint unix:///run/containerd/containerd.sock) old new
  local deadline=$(($(date +%s) + 300))
  old="$("${crictl[@]}" ps --name "^$1\$" --state running -q)"
  [[ -n "${old}" ]] || die "no running $1 container to restart"
  "${crictl[@]}" stop "${old}" >/dev/null
  until new="$("${crictl[@]}" ps --name "^$1\$" --state running -q)" && [[ -n "${new}" && "${new}" != "${old}" ]]; do
    (($(date +%s) < deadline)) || die "$1 did not run again within 300 s of its restart"
    sleep 2
  done
  log "$1 restarted with the renewed certificates"
}

control_plane_timers() {
  systemctl daemon-reload
  systemctl enable --now spiderpool-rdma-join-refresh.timer
  systemctl enable --now spiderpool-rdma-renew-certificates.timer
  systemctl enable --now spiderpool-rdma-etcd-backup.timer # every control plane runs a member of etcd
  systemctl enable --now spiderpool-rdma-member-replacement.timer # answers a replaced control-plane-0 (HA)
}

# The steps of every control plane once it runs the API server (after kubeadm init or join).
control_plane_steps() {
  step join-credentials refresh_join_credentials
  step control-plane-timers control_plane_timers
}
