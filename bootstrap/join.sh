# shellcheck shell=bash
# Workers and further control planes: wait for the join parameter, then join with the CA hash pinned.

JOIN_FILE="${SPR_STATE}/join-command"

# Poll SSM with exponential backoff (capped) until the first control plane published the join command.
wait_for_join() {
  local parameter="$1" deadline delay=5 value
  deadline=$(($(date +%s) + SPR_JOIN_TIMEOUT))
  while :; do
    value="$(ssm_get "${parameter}" 2>>"${SPR_LOG_DIR}/ssm.log" || true)"
    if [[ "${value}" =~ ${SPR_JOIN_PATTERN} ]]; then
      printf '%s\n' "${value}" >"${JOIN_FILE}"
      chmod 600 "${JOIN_FILE}"
      return 0
    fi
    if (($(date +%s) + delay > deadline)); then
      die "join parameter ${SPR_SSM_PATH}/${parameter} not published within ${SPR_JOIN_TIMEOUT}s; check control-plane-0's bootstrap log"
    fi
    log "join parameter ${parameter} not published yet; next check in ${delay}s"
    sleep "${delay}"
    delay=$((delay * 2 > 60 ? 60 : delay * 2))
  done
}

# Join from a JoinConfiguration built from the parsed command: nothing from SSM is ever evaluated.
kubeadm_join() {
  local endpoint token hash key="" control_plane=""
  [[ "$(cat "${JOIN_FILE}")" =~ ${SPR_JOIN_PATTERN} ]] || die "stored join command is malformed"
  endpoint="${BASH_REMATCH[1]}" token="${BASH_REMATCH[2]}" hash="${BASH_REMATCH[3]}" key="${BASH_REMATCH[5]}"
  if [[ -n "${key}" ]]; then
    control_plane="controlPlane:
  certificateKey: \"${key}\"
  localAPIEndpoint:
    advertiseAddress: \"${SPR_NODE_IP}\"
    bindPort: 6443"
  fi
  write_file /etc/spiderpool-rdma/kubeadm-join.yaml 0600 <<YAML
apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: "${endpoint}"
    token: "${token}"
    caCertHashes: ["${hash}"]
nodeRegistration:
  name: "${SPR_NODE_NAME}"
  kubeletExtraArgs:
    - name: node-ip
      value: "${SPR_NODE_IP}"
    - name: node-labels
      value: "${SPR_NODE_LABELS}"
${control_plane}
YAML
  if [[ -e "${SPR_ROOT}/etc/kubernetes/kubelet.conf" ]]; then
    log "node already joined (kubelet.conf exists)"
    return 0
  fi
  kubeadm join --config "${SPR_ROOT}/etc/spiderpool-rdma/kubeadm-join.yaml"
  rm -f "${JOIN_FILE}"
}

wait_for_worker_join() { wait_for_join join-worker; }
wait_for_control_plane_join() { wait_for_join join-control-plane; }

role_steps() {
  if [[ "${SPR_ROLE}" == "control-plane-join" ]]; then
    step wait-join wait_for_control_plane_join
  else
    step wait-join wait_for_worker_join
  fi
  step kubeadm-join kubeadm_join
}
