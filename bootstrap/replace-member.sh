#!/usr/bin/env bash
# Run every minute by spiderpool-rdma-member-replacement.timer on every control plane: answers a replaced
# control-plane-0's request (init.sh, replace_etcd_member) that its dead etcd member leave etcd before it joins. Only
# the first live control plane other than the one replaced answers, and it removes at most that one member, only when:
# the member bears the node's name (or, never started, holds its peer URL) and exactly its peer URL, the node's fixed
# address; its kubelet no longer posts the node's status; nothing answers etcd's health check at its client URLs; and
# the other members that answer are a quorum of those left (etcd's own check, mayRemoveMember, comes on top). Otherwise
# it refuses, saying why. Each request is answered once (removed, absent or refused, with the request's word), so a
# timer that fires again, or a second control plane, never removes a second member: the joined replacement is a new
# member with a new ID, and answers the health check.
#
# Why the live control planes and not another party: removing a member takes etcd's client credentials, which the
# replacement gets only by joining, and which every control plane holds anyway. Whoever can write the request (the
# control-plane role only, cdk/constructs/iam.py) can already remove members with those credentials; a worker can
# neither write nor read it. Nothing gets new rights to reach a node (no ssm:SendCommand from nodes).
set -euo pipefail

SPR_LIB="${SPR_LIB:-${SPR_ROOT:-}/usr/local/lib/spiderpool-rdma}"
# shellcheck source=/dev/null
source "${SPR_ROOT:-}/etc/spiderpool-rdma/node.env"
# shellcheck source=lib.sh
source "${SPR_LIB}/lib.sh"
# shellcheck source=control-plane.sh
source "${SPR_LIB}/control-plane.sh"
# shellcheck source=etcd.sh
source "${SPR_LIB}/etcd.sh"

SPR_STEP="member-replacement"
TOOL_LOG="${SPR_LOG_DIR}/member-replacement.log" # what etcdctl printed
RESTORE="spiderpool-rdma restore --cluster ${SPR_CLUSTER} --region ${SPR_REGION} (README \"Back up and restore etcd\")"

# etcd_ctl IMAGE NAME ETCDCTL-ARGUMENT...: etcdctl of the image kubeadm runs etcd from, with the healthcheck client's
# certificate as the backup uses it (kubeadm enables no etcd auth: any certificate of etcd's CA may reconfigure it),
# on this node's member unless the arguments name other endpoints.
etcd_ctl() {
  local image="$1" name="$2"
  shift 2
  etcd_tool "${image}" "member-${name}" \
    --mount "type=bind,src=${ETCD_PKI},dst=${ETCD_PKI},options=rbind:ro" \
    -- /usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert="${ETCD_PKI}/ca.crt" \
    --cert="${ETCD_PKI}/healthcheck-client.crt" --key="${ETCD_PKI}/healthcheck-client.key" "$@"
}

# decide NAME PEER MEMBERS HEALTH: `remove HEX-ID`, `absent`, or `refuse REASON`, from `member list -w json` (IDs as
# decimal numbers: encoding/json of etcdserverpb.Member, every field omitempty) and `endpoint health -w json`.
decide() {
  python3 - "$@" <<'PY'
import json, sys
name, peer, listed, health = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
members = listed.get("members", [])
healthy = {h["endpoint"] for h in (json.loads(health) if health.strip() else []) if h.get("health")}
def live(m): return healthy & set(m.get("clientURLs", []))
targets = [m for m in members if m.get("name") == name or (not m.get("name") and peer in m.get("peerURLs", []))]
if not targets:
    print("absent")
elif len(targets) > 1:
    print(f"refuse {len(targets)} etcd members are named {name} or hold {peer}: not choosing one")
elif targets[0].get("peerURLs") != [peer]:
    print(f"refuse etcd member {name} has the peer URLs {targets[0].get('peerURLs')}, not {peer}: not this node's")
elif live(targets[0]):
    print(f"refuse it answers etcd's health check at {sorted(live(targets[0]))[0]}: not removing a live member")
else:
    target = targets[0]
    others = [m for m in members if not m.get("isLearner") and m is not target]
    up, quorum = sum(1 for m in others if live(m)), len(others) // 2 + 1
    if not target.get("isLearner") and up < quorum:
        print(f"refuse etcd has no quorum without it: {up} of the {len(others)} other members answer, {quorum} needed")
    else:
        print(f"remove {target['ID']:x}")
PY
}

# answer VERB NAME NONCE [DETAIL]: the one answer to this request.
answer() {
  printf '%s\n' "$*" | ssm_put etcd-member-replacement Standard
  log "answered ${2}: $1${4:+ ${*:4}}"
}

answer_request() {
  local request name peer nonce live first image listed endpoints health decision removed
  request="$(ssm_get etcd-member-replacement)"
  [[ "${request}" =~ ^request\ (control-plane-[0-9]+)\ (https://[0-9.]+:2380)\ ([a-f0-9]{16})$ ]] || return 0
  name="${BASH_REMATCH[1]}" peer="${BASH_REMATCH[2]}" nonce="${BASH_REMATCH[3]}"
  live="$(live_control_planes)"
  first="$(grep -vx "${name}" <<<"${live}" | head -n 1 || true)"
  if [[ "${first}" != "${SPR_NODE_NAME}" ]]; then
    log "${first:-no live control plane} answers ${name}'s request, not ${SPR_NODE_NAME}"
    return 0
  fi
  log "${name} (${peer}) asks that its dead etcd member leave etcd before it joins"
  if grep -qx "${name}" <<<"${live}"; then
    answer refused "${name}" "${nonce}" "its kubelet still posts the node's status: the old instance runs; not removing a live member (terminate it first)"
    return 0
  fi
  image="$(etcd_image)"
  if ! listed="$(etcd_ctl "${image}" "list-${nonce}" --write-out=json member list 2>>"${TOOL_LOG}")"; then
    answer refused "${name}" "${nonce}" "etcd has no quorum (its member list does not answer): no member can be removed. Bring the other control planes back, or rebuild the cluster from its newest backup: ${RESTORE}"
    return 0
  fi
  endpoints="$(python3 -c 'import json, sys; print(",".join(u for m in json.load(sys.stdin)["members"] for u in m.get("clientURLs", [])))' <<<"${listed}")"
  # exit 1 when any endpoint is unhealthy (the dead member's is): the JSON list says which
  health="$(etcd_ctl "${image}" "health-${nonce}" --endpoints="${endpoints}" --write-out=json endpoint health 2>>"${TOOL_LOG}" || true)"
  decision="$(decide "${name}" "${peer}" "${listed}" "${health}")"
  case "${decision}" in
    absent) answer absent "${name}" "${nonce}" ;;
    remove\ *)
      # the request may have been answered meanwhile (another control plane's timer): answer each request once
      [[ "$(ssm_get etcd-member-replacement)" == "${request}" ]] || return 0
      if ! removed="$(etcd_ctl "${image}" "remove-${nonce}" member remove "${decision#remove }" 2>&1)"; then
        answer refused "${name}" "${nonce}" "etcd refused to remove member ${decision#remove }: ${removed}. If etcd has no quorum, rebuild the cluster from its newest backup: ${RESTORE}"
        return 0
      fi
      log "${removed}"
      answer removed "${name}" "${nonce}" "${decision#remove }"
      refresh_join_credentials # the control-plane join credentials, at once: the replacement waits for them
      ;;
    refuse\ *quorum*) answer refused "${name}" "${nonce}" "${decision#refuse }. Bring the other control planes back, or rebuild the cluster from its newest backup: ${RESTORE}" ;;
    *) answer refused "${name}" "${nonce}" "${decision#refuse }" ;;
  esac
}

answer_request
