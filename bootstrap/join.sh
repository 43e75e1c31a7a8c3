# shellcheck shell=bash
# Workers and further control planes: wait for the join parameter, then join with the CA hash pinned. A join that
# fails (the token or certificate key expired meanwhile) is reset and retried with the value published next.

JOIN_FILE="${SPR_STATE}/join-command"

# wait_for_join PARAMETER [STALE]: poll SSM with exponential backoff (capped) until the first control plane
# published a join command (other than STALE, one that already failed), until the join deadline.
wait_for_join() {
  local parameter="$1" stale="${2:-}" delay=5 value
  while :; do
    value="$(ssm_get "${parameter}" 2>>"${SPR_LOG_DIR}/ssm.log" || true)"
    if [[ "${value}" =~ ${SPR_JOIN_PATTERN} && "${value}" != "${stale}" ]]; then
      printf '%s\n' "${value}" >"${JOIN_FILE}"
      chmod 600 "${JOIN_FILE}"
      return 0
    fi
    if (($(date +%s) + delay > SPR_JOIN_DEADLINE)); then
      die "join parameter ${SPR_SSM_PATH}/${parameter} not published within ${SPR_JOIN_TIMEOUT}s; check control-plane-0's bootstrap log"
    fi
    log "join parameter ${parameter} not published yet; next check in ${delay}s"
    sleep "${delay}"
    delay=$((delay * 2 > 60 ? 60 : delay * 2))
  done
}

# A JoinConfiguration built from the parsed command: nothing from SSM is ever evaluated.
write_join_config() {
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
    - name: image-credential-provider-config
      value: "${SPR_CREDENTIAL_PROVIDER_CONFIG}"
    - name: image-credential-provider-bin-dir
      value: "${SPR_CREDENTIAL_PROVIDER_BIN_DIR}"
${control_plane}
YAML
}

# kubeadm_join PARAMETER: join; on failure reset what the attempt left, fetch a newer value and retry.
kubeadm_join() {
  local parameter="$1" failed
  if [[ -e "${SPR_ROOT}/etc/kubernetes/kubelet.conf" ]]; then
    log "node already joined (kubelet.conf exists)"
    return 0
  fi
  write_join_config
  until kubeadm join --config "${SPR_ROOT}/etc/spiderpool-rdma/kubeadm-join.yaml"; do
    failed="$(cat "${JOIN_FILE}")"
    log "kubeadm join failed; resetting and waiting for a newer ${parameter} (control-plane-0 refreshes it hourly)"
    kubeadm reset --force
    wait_for_join "${parameter}" "${failed}"
    write_join_config
  done
  rm -f "${JOIN_FILE}"
}

role_steps() {
  local parameter=join-worker
  [[ "${SPR_ROLE}" == "control-plane-join" ]] && parameter=join-control-plane
  # One deadline for this run's waiting and retrying; a restart of the unit starts a new one.
  SPR_JOIN_DEADLINE=$(($(date +%s) + SPR_JOIN_TIMEOUT))
  SPR_JOIN_PARAMETER="${parameter}"
  step wait-join wait_for_join_parameter
  step kubeadm-join join_with_parameter
}

wait_for_join_parameter() { wait_for_join "${SPR_JOIN_PARAMETER}"; }
join_with_parameter() { kubeadm_join "${SPR_JOIN_PARAMETER}"; }
