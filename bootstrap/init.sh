# shellcheck shell=bash
# control-plane-0: kubeadm init (no CNI: the umbrella chart installs Spiderpool), then what every control plane does
# (control-plane.sh), the first time: the version record, the join credentials, the admin kubeconfig.

# shellcheck source=control-plane.sh
source "${SPR_LIB}/control-plane.sh"

INIT_CONFIG="${SPR_ROOT}/etc/spiderpool-rdma/kubeadm-init.yaml"

# Never a second cluster: once the first control plane published the worker join command, nodes may have joined the
# cluster it made, whose CA and etcd lived on its disk. A control-plane-0 that replaces it (a new instance of this
# node) does not run kubeadm init over it: it stops, saying how to rebuild that cluster from its backup (or, with other
# control planes that answer, joins them). A restore (etcd-restore.sh) lets it go on with kubeadm init on the data.
existing_cluster() {
  local endpoint
  [[ "$(retry 5 10 ssm_get join-worker)" != pending && ! -e "${SPR_STATE}/etcd-restored" ]] || return 0
  endpoint="$(awk '$1 == "controlPlaneEndpoint:" {gsub(/"/, "", $2); print $2}' "${INIT_CONFIG}")"
  # /livez answers without credentials (the system:public-info-viewer role); -k: nothing secret is sent or read.
  if curl -fsk --max-time 10 -o /dev/null "https://${endpoint}/livez"; then
    die "cluster ${SPR_CLUSTER} exists and its API answers at ${endpoint}: ${SPR_NODE_NAME} will not start a second cluster, nor join it yet (README \"Replace a control plane\")"
  fi
  die "cluster ${SPR_CLUSTER} exists (its join command is published) and no control plane answers at ${endpoint}: ${SPR_NODE_NAME} will not start a second cluster. Rebuild it from its newest backup: spiderpool-rdma restore --cluster ${SPR_CLUSTER} --region ${SPR_REGION} (README \"Back up and restore etcd\"); or destroy it"
}

# A new cluster runs the configured minor's newest patch, which common.sh installed; the nodes that join install exactly
# it. A cluster that exists (restored) keeps the version it records, which common.sh installed.
record_version() {
  local version
  version="$(kubeadm version -o short)"
  if [[ "$(ssm_get kubernetes-version)" == "${version}" ]]; then
    return 0
  fi
  [[ "${version}" =~ ^v${SPR_K8S_MINOR//./\\.}\.[0-9]+$ ]] || die "kubeadm ${version} is not a ${SPR_K8S_MINOR} release"
  record_kubernetes_version
}

# The key of Secrets at rest in etcd, before the API server first starts: secretbox (XSalsa20-Poly1305) with a random
# 32-byte key; identity reads what was stored unencrypted. The API servers reload the file when it changes
# (--encryption-provider-config-automatic-reload): the README's rotation edits it on every control plane.
encryption_config() {
  local key
  [[ ! -e "${SPR_STATE}/etcd-restored" ]] || return 0 # the restored cluster's own key (etcd-restore.sh put it back)
  key="$(head -c 32 /dev/urandom | base64 -w 0)"
  [[ "${key}" =~ ^[A-Za-z0-9+/]{43}=$ ]] || die "no 32-byte key from /dev/urandom"
  write_file "${SPR_ENCRYPTION_CONFIG}" 0600 <<YAML
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: ["secrets"]
    providers:
      - secretbox:
          keys:
            - name: key-$(date -u +%Y%m%d)
              secret: ${key}
      - identity: {}
YAML
}

# kubeadm writes admin.conf early (its kubeconfig phase precedes wait-control-plane), so only this step's marker
# says init completed. Reaching here means it did not: whatever an earlier attempt left is reset first. The
# certificates are uploaded for other control planes only when they are missing (control-plane.sh).
kubeadm_init() {
  local keep=()
  # Pin kubernetesVersion to the installed kubeadm's: left out, kubeadm looks up "stable-1" on dl.k8s.io.
  sed -i "s/^kubernetesVersion: .*/kubernetesVersion: \"$(kubeadm version -o short)\"/" "${INIT_CONFIG}"
  if [[ -e "${SPR_STATE}/etcd-restored" ]]; then
    # etcd-restore.sh put etcd's data and the CAs back: kubeadm keeps both (a reset would delete them).
    keep=(--ignore-preflight-errors=DirAvailable--var-lib-etcd)
    [[ ! -e "${ADMIN_CONF}" ]] || die "kubeadm init on the restored data did not complete: run etcd-restore.sh again"
  elif [[ -e "${ADMIN_CONF}" || -e "${SPR_ROOT}/etc/kubernetes/manifests/kube-apiserver.yaml" ]]; then
    log "an earlier kubeadm init did not complete: resetting before running it again"
    kubeadm reset --force
  fi
  kubeadm init --config "${INIT_CONFIG}" "${keep[@]}"
}

role_steps() {
  step existing-cluster existing_cluster
  step record-version record_version
  step encryption-config encryption_config
  step kubeadm-init kubeadm_init
  control_plane_steps
  step publish-kubeconfig publish_kubeconfig
}
