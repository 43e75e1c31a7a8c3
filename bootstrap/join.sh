# shellcheck shell=bash
# Workers and further control planes (and a control-plane-0 that replaces a dead one in HA: init.sh): wait for the join
# parameter, then join with the CA hash pinned. A join that fails (the token or certificate key expired meanwhile) is
# reset and retried with the value published next. A control plane then takes its share of what every control plane
# does (control-plane.sh).

# control-plane.sh is shipped to control planes only (checked on its own); init.sh sources it itself.
# shellcheck source=/dev/null
[[ "${SPR_ROLE}" != control-plane-join ]] || source "${SPR_LIB}/control-plane.sh"

JOIN_FILE="${SPR_STATE}/join-command"

# wait_for_join PARAMETER [STALE]: keep the join command published in PARAMETER (other than STALE) in JOIN_FILE, which
# holds the last one until then (a restart after the deadline retries it, then waits again).
wait_for_join() {
  local value
  value="$(wait_for_parameter "$1" "${SPR_JOIN_PATTERN}" "${2:-}")"
  printf '%s\n' "${value}" >"${JOIN_FILE}"
  chmod 600 "${JOIN_FILE}"
}

# A control plane's API server encrypts Secrets with the key every other one uses: the EncryptionConfiguration the
# control plane that published this join command published with it, on disk before kubeadm join starts the API server.
fetch_encryption_config() {
  local value
  value="$(wait_for_parameter encryption-config '^apiVersion: apiserver\.config\.k8s\.io/v1')"
  printf '%s\n' "${value}" | write_file "${SPR_ENCRYPTION_CONFIG}" 0600
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

# joined: a worker whose kubelet finished its TLS bootstrap (kubelet.conf, kubelet-start: kubeadm join's last phase).
# Not a control plane: kubeadm writes kubelet.conf before its etcd member is added (control-plane-join comes after
# kubelet-start, cmd/kubeadm/app/cmd/join.go), so one killed halfway through is reset and joins again.
joined() {
  [[ "${SPR_ROLE}" == worker && -e "${SPR_ROOT}/etc/kubernetes/kubelet.conf" ]]
}

# kubeadm_join PARAMETER: join, each attempt bounded by kubeadm's own worst case. A failed attempt is reset (what it
# left would fail the next one's preflight) and retried with the same value after 30, 60, 120 and 240 s (an API not
# ready yet), or at once with a newer value published meanwhile; then the node waits for a newer value (an expired
# token or certificate key: the control planes refresh them hourly).
kubeadm_join() {
  local parameter="$1" failed delay=30
  if joined; then
    log "node already joined (kubelet.conf exists)"
    return 0
  fi
  # What an interrupted join left fails the next one's preflight (RunJoinNodeChecks: kubelet.conf, the CA, manifests).
  local k="${SPR_ROOT}/etc/kubernetes"
  if compgen -G "${k}/manifests/*" >/dev/null || [[ -e "${k}/kubelet.conf" || -e "${k}/bootstrap-kubelet.conf" || -e "${k}/pki/ca.crt" ]]; then
    log "an earlier kubeadm join did not complete: resetting before joining again"
    kubeadm reset --force
  fi
  write_join_config
  until timeout --kill-after=30 "${SPR_JOIN_ATTEMPT_SECONDS}" \
    kubeadm join --config "${SPR_ROOT}/etc/spiderpool-rdma/kubeadm-join.yaml"; do
    failed="$(cat "${JOIN_FILE}")"
    kubeadm reset --force
    if ((delay <= 240 && $(date +%s) + delay <= SPR_JOIN_DEADLINE)); then
      log "kubeadm join failed; trying again in ${delay}s"
      sleep "${delay}"
      delay=$((delay * 2))
      wait_for_join "${parameter}"
    else
      log "kubeadm join failed again; waiting for a newer ${parameter} (the control planes refresh it hourly)"
      wait_for_join "${parameter}" "${failed}"
    fi
    [[ "$(cat "${JOIN_FILE}")" == "${failed}" ]] || delay=30 # a new value gets its own retries
    write_join_config
  done
  rm -f "${JOIN_FILE}"
}

# join_steps: a worker's or control plane's join, and then what every control plane does. Also control-plane-0's when
# it replaces a dead one in HA (init.sh, which sources this file and defines its own role_steps).
join_steps() {
  local parameter=join-worker
  [[ "${SPR_ROLE}" == worker ]] || parameter=join-control-plane
  SPR_JOIN_PARAMETER="${parameter}"
  step wait-join wait_for_join_parameter
  if [[ "${SPR_ROLE}" != worker ]]; then
    step encryption-config fetch_encryption_config
  fi
  step kubeadm-join join_with_parameter
  if [[ "${SPR_ROLE}" != worker ]]; then
    control_plane_steps
  fi
}

role_steps() { join_steps; }

wait_for_join_parameter() { wait_for_join "${SPR_JOIN_PARAMETER}"; }
join_with_parameter() { kubeadm_join "${SPR_JOIN_PARAMETER}"; }
