# shellcheck shell=bash
# control-plane-0: kubeadm init (no CNI: the umbrella chart installs Spiderpool), then what every control plane does
# (control-plane.sh), the first time: the version record, the join credentials, the admin kubeconfig.

# shellcheck source=control-plane.sh
source "${SPR_LIB}/control-plane.sh"

INIT_CONFIG="${SPR_ROOT}/etc/spiderpool-rdma/kubeadm-init.yaml"

# The configured minor's newest patch is what common.sh installed here; the nodes that join install exactly it.
record_version() {
  local version
  version="$(kubeadm version -o short)"
  [[ "${version}" =~ ^v${SPR_K8S_MINOR//./\\.}\.[0-9]+$ ]] || die "kubeadm ${version} is not a ${SPR_K8S_MINOR} release"
  record_kubernetes_version
}

# The key of Secrets at rest in etcd, before the API server first starts: secretbox (XSalsa20-Poly1305) with a random
# 32-byte key; identity reads what was stored unencrypted. The API servers reload the file when it changes
# (--encryption-provider-config-automatic-reload): the README's rotation edits it on every control plane.
encryption_config() {
  local key
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
  # Pin kubernetesVersion to the installed kubeadm's: left out, kubeadm looks up "stable-1" on dl.k8s.io.
  sed -i "s/^kubernetesVersion: .*/kubernetesVersion: \"$(kubeadm version -o short)\"/" "${INIT_CONFIG}"
  if [[ -e "${ADMIN_CONF}" || -e "${SPR_ROOT}/etc/kubernetes/manifests/kube-apiserver.yaml" ]]; then
    log "an earlier kubeadm init did not complete: resetting before running it again"
    kubeadm reset --force
  fi
  kubeadm init --config "${INIT_CONFIG}"
}

role_steps() {
  step record-version record_version
  step encryption-config encryption_config
  step kubeadm-init kubeadm_init
  control_plane_steps
  step publish-kubeconfig publish_kubeconfig
}
