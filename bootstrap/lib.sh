# shellcheck shell=bash
# Helpers shared by every bootstrap step: logging, idempotent steps, retries.
# SPR_ROOT prefixes every path written (empty on a node; a temporary directory in tests).

SPR_STATE="${SPR_ROOT}/var/lib/spiderpool-rdma"
SPR_LOG_DIR="${SPR_ROOT}/var/log/spiderpool-rdma"
# The AWS CLI by its real path: a systemd unit's PATH has no /snap/bin. Snap aws-cli, app aws: <snap>.<app>.
AWS="${SPR_ROOT}/snap/bin/aws-cli.aws"

log() {
  local line
  line="$(date -u +%Y-%m-%dT%H:%M:%SZ) [${SPR_STEP:-bootstrap}] $*"
  printf '%s\n' "${line}" >>"${SPR_LOG_DIR}/bootstrap.log"
  printf '%s\n' "${line}" >&2
}

die() {
  log "FAILED: $*"
  printf 'failed step=%s reason=%s\n' "${SPR_STEP:-bootstrap}" "$*" >"${SPR_STATE}/status"
  exit 1
}

# step NAME FUNCTION: run FUNCTION once per node; its marker makes a second run a no-op.
step() {
  local name="$1" fn="$2"
  SPR_STEP="${name}"
  if [[ -e "${SPR_STATE}/done/${name}" ]]; then
    log "already done"
    return 0
  fi
  log "start"
  printf 'running step=%s\n' "${name}" >"${SPR_STATE}/status"
  # errexit is ignored inside `f || ...`, so run the step in a subshell with -e and read its status.
  local rc
  set +e
  (
    set -e
    "${fn}"
  ) >>"${SPR_LOG_DIR}/${name}.log" 2>&1
  rc=$?
  set -e
  ((rc == 0)) || die "exit ${rc}; see ${SPR_LOG_DIR}/${name}.log"
  touch "${SPR_STATE}/done/${name}"
  log "done"
}

# reboot_once NAME REASON: reboot for REASON, once per node: a cause that stays (a reboot-required flag another
# package keeps) must not loop it. The unit starts again after the boot and resumes.
reboot_once() {
  [[ -e "${SPR_STATE}/done/$1" ]] && return 0
  log "$2: rebooting; the bootstrap resumes after it"
  touch "${SPR_STATE}/done/$1"
  systemctl reboot
  exit 0
}

# retry ATTEMPTS DELAY COMMAND...: for network calls that fail transiently.
retry() {
  local attempts="$1" delay="$2" n=1
  shift 2
  until "$@"; do
    if ((n >= attempts)); then
      return 1
    fi
    log "attempt ${n}/${attempts} of '$1' failed; retrying in ${delay}s"
    sleep "${delay}"
    n=$((n + 1))
  done
}

# write_file PATH MODE: write stdin to PATH under SPR_ROOT.
write_file() {
  local path="${SPR_ROOT}$1"
  mkdir -p "$(dirname "${path}")"
  cat >"${path}"
  chmod "$2" "${path}"
}

# apt_install PACKAGE...: non-interactive, retried (mirrors can be briefly unreachable).
apt_install() {
  retry 5 10 apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@"
}

# ssm_get NAME: print a SecureString of this cluster's path, decrypted.
ssm_get() {
  "${AWS}" ssm get-parameter --region "${SPR_REGION}" --with-decryption --name "${SPR_SSM_PATH}/$1" \
    --query Parameter.Value --output text
}

# ssm_put NAME TIER < VALUE: overwrite a SecureString of this cluster's path with stdin.
# The value goes through a private file, never the command line (visible to every local user).
ssm_put() {
  local tmp rc=0
  tmp="$(mktemp "${SPR_STATE}/value.XXXXXX")"
  chmod 600 "${tmp}"
  cat >"${tmp}"
  "${AWS}" ssm put-parameter --region "${SPR_REGION}" --name "${SPR_SSM_PATH}/$1" --type SecureString \
    --key-id "${SPR_KMS_KEY}" --tier "$2" --overwrite --value "file://${tmp}" >/dev/null || rc=$?
  rm -f "${tmp}"
  return "${rc}"
}

# wait_for_parameter NAME PATTERN [STALE [WRITER]]: poll SSM with exponential backoff (capped) until NAME holds a value
# matching PATTERN, other than STALE (one that already failed), and print it; give up at SPR_JOIN_DEADLINE, pointing at
# the WRITER's log. What a node waits for from the first control plane: the Kubernetes version it recorded, then the
# join command (and a replaced control-plane-0, the live control planes' answer: init.sh).
wait_for_parameter() {
  local name="$1" pattern="$2" stale="${3:-}" writer="${4:-the bootstrap log of control-plane-0}" delay=5 value
  while :; do
    value="$(ssm_get "${name}" 2>>"${SPR_LOG_DIR}/ssm.log" || true)"
    if [[ "${value}" =~ ${pattern} && "${value}" != "${stale}" ]]; then
      printf '%s\n' "${value}"
      return 0
    fi
    if (($(date +%s) + delay > SPR_JOIN_DEADLINE)); then
      die "parameter ${SPR_SSM_PATH}/${name} not published within ${SPR_JOIN_TIMEOUT}s; check ${writer}"
    fi
    log "parameter ${name} not published yet; next check in ${delay}s"
    sleep "${delay}"
    delay=$((delay * 2 > 60 ? 60 : delay * 2))
  done
}

# gpg_home: a private, throw-away gpg home for this step (a unit has no HOME; root's keyring stays untouched).
gpg_home() {
  GNUPGHOME="$(mktemp -d "${SPR_STATE}/gnupg.XXXXXX")"
  export GNUPGHOME
}

# fetch_key URL FILE FINGERPRINT: download a signing key; accept it only if the file holds one key (one `pub` or `sec`
# record of gpg's listing, doc/DETAILS) with the pinned primary fingerprint (field 10 of its first `fpr` record). A
# keyring made from the file trusts every key in it: the genuine key followed by another would let that other one sign.
fetch_key() {
  local listing keys fpr
  retry 5 10 curl -fsSL -o "$2" "$1"
  listing="$(gpg --batch --show-keys --with-colons "$2")"
  keys="$(grep -cE '^(pub|sec):' <<<"${listing}" || true)"
  ((keys == 1)) || die "signing key file $1 holds ${keys} keys, not only the one with fingerprint $3: not using it"
  fpr="$(awk -F: '/^fpr:/ {print $10; exit}' <<<"${listing}")"
  [[ "${fpr}" == "$3" ]] || die "signing key $1 has fingerprint '${fpr}', expected $3"
}

# verify_signature SIG FILE KEY FINGERPRINT: a good signature of FILE by the key FINGERPRINT, nothing less. gpgv,
# as apt uses it: no agent, no trust database; its VALIDSIG status line ends with the primary key's fingerprint.
verify_signature() {
  local signer
  gpg --batch --yes --dearmor -o "$3.gpg" "$3"
  signer="$(gpgv --keyring "$3.gpg" --status-fd 1 "$1" "$2" 2>/dev/null | awk '$2 == "VALIDSIG" {print $NF}')" || true
  [[ "${signer}" == "$4" ]] || die "$(basename "$2") has no valid signature by $4: not using it"
}
