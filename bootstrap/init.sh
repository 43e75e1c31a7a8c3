# shellcheck shell=bash
# control-plane-0: kubeadm init (no CNI: the umbrella chart installs Spiderpool), then what every control plane does
# (control-plane.sh), the first time: the version record, the join credentials, the admin kubeconfig. A control-plane-0
# that replaces a dead one in HA joins the live control planes instead (join.sh), once its dead etcd member left etcd.

# shellcheck source=control-plane.sh
source "${SPR_LIB}/control-plane.sh"
# join_steps and what they call; the role_steps it defines is replaced by this file's own, below.
# shellcheck source=join.sh
source "${SPR_LIB}/join.sh"

INIT_CONFIG="${SPR_ROOT}/etc/spiderpool-rdma/kubeadm-init.yaml"
# Made by existing_cluster when this node replaces a dead control-plane-0 in HA: it joins the live control planes.
REPLACING="${SPR_STATE}/replacing"
# This replacement's request (a random word), kept across reboots: a restart waits for the answer to the request it
# made, rather than asking again.
MEMBER_REQUEST="${SPR_STATE}/member-request"

# Never a second cluster: once the first control plane published the worker join command, nodes may have joined the
# cluster it made, whose CA and etcd lived on its disk. A control-plane-0 that replaces it (a new instance of this
# node) does not run kubeadm init over it. With other control planes that answer (HA), it joins them; otherwise it
# stops, saying how to rebuild that cluster from its backup. A restore (etcd-restore.sh) lets it go on with kubeadm init
# on the data.
existing_cluster() {
  local endpoint
  [[ "$(retry 5 10 ssm_get join-worker)" != pending && ! -e "${SPR_STATE}/etcd-restored" ]] || return 0
  endpoint="$(awk '$1 == "controlPlaneEndpoint:" {gsub(/"/, "", $2); print $2}' "${INIT_CONFIG}")"
  # /livez answers without credentials (the system:public-info-viewer role); -k: nothing secret is sent or read.
  if curl -fsk --max-time 10 -o /dev/null "https://${endpoint}/livez"; then
    if ((SPR_CONTROL_PLANES > 1)); then
      log "cluster ${SPR_CLUSTER} exists and its API answers at ${endpoint}: ${SPR_NODE_NAME} replaces a dead control plane and joins the live ones"
      touch "${REPLACING}"
      return 0
    fi
    die "cluster ${SPR_CLUSTER} exists and its API answers at ${endpoint}: ${SPR_NODE_NAME} will not start a second cluster, and with one control plane there is none to join (README \"Replace a control plane\")"
  fi
  die "cluster ${SPR_CLUSTER} exists (its join command is published) and no control plane answers at ${endpoint}: ${SPR_NODE_NAME} will not start a second cluster. Rebuild it from its newest backup: spiderpool-rdma restore --cluster ${SPR_CLUSTER} --region ${SPR_REGION} (README \"Back up and restore etcd\"); or destroy it"
}

# The dead control-plane-0's etcd member must leave etcd before this node joins: kubeadm's join finds a member with its
# peer URL (the node's fixed address) and skips adding one (cmd/kubeadm/app/util/etcd/etcd.go, addMember: "Skipping
# etcd member addition"), so the new, empty etcd would start as the old member; etcd's rule for a failed member is to
# remove it, then add the new one (etcd.io, op-guide/runtime-configuration, "Replace a failed machine"). This node has
# no etcd credentials before it joins: it asks through the cluster's SSM parameter, and the first live control plane
# answers within a minute (replace-member.sh: removed, absent, or refused with the reason, checked there).
replace_etcd_member() {
  local nonce peer="https://${SPR_NODE_IP}:2380" answer
  [[ -s "${MEMBER_REQUEST}" ]] || openssl rand -hex 8 >"${MEMBER_REQUEST}"
  nonce="$(cat "${MEMBER_REQUEST}")"
  [[ "${nonce}" =~ ^[a-f0-9]{16}$ ]] || die "openssl made no request word"
  if [[ ! "$(ssm_get etcd-member-replacement)" =~ ^[a-z]+\ ${SPR_NODE_NAME}\ (${peer}\ )?${nonce}( |$) ]]; then
    printf 'request %s %s %s\n' "${SPR_NODE_NAME}" "${peer}" "${nonce}" | ssm_put etcd-member-replacement Standard
    log "asked the live control planes to remove the dead etcd member ${SPR_NODE_NAME} (${peer}) before joining them"
  fi
  answer="$(wait_for_parameter etcd-member-replacement "^(removed|absent|refused) ${SPR_NODE_NAME} ${nonce}( |$)" "" \
    "the live control planes' spiderpool-rdma-member-replacement.service journal")"
  case "${answer}" in
    removed*) log "the dead etcd member ${SPR_NODE_NAME} (ID ${answer##* }) left etcd: joining the live control planes" ;;
    absent*) log "no etcd member ${SPR_NODE_NAME} is left: joining the live control planes" ;;
    *)
      rm -f "${MEMBER_REQUEST}" # the unit's next start asks again
      die "the live control planes did not remove etcd member ${SPR_NODE_NAME}: ${answer#refused "${SPR_NODE_NAME}" "${nonce}" }"
      ;;
  esac
}

# Once joined, nothing is left asking: the parameter holds the placeholder again (if it still holds this answer).
close_member_request() {
  if [[ "$(ssm_get etcd-member-replacement)" =~ ^[a-z]+\ ${SPR_NODE_NAME}\ $(cat "${MEMBER_REQUEST}")( |$) ]]; then
    printf 'pending' | ssm_put etcd-member-replacement Standard
  fi
  rm -f "${MEMBER_REQUEST}"
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
  if [[ -e "${REPLACING}" ]]; then
    step member-replacement replace_etcd_member
    join_steps
    step close-member-request close_member_request
  else
    step record-version record_version
    step encryption-config encryption_config
    step kubeadm-init kubeadm_init
    control_plane_steps
  fi
  step publish-kubeconfig publish_kubeconfig
}
