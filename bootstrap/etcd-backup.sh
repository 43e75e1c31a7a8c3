#!/usr/bin/env bash
# Run hourly by spiderpool-rdma-etcd-backup.timer on every control plane: a snapshot of etcd and the cluster's
# certificate authorities (a restore needs both: nodes trust only the CA they joined, tokens only the service account
# key that signed them), checked and uploaded as one archive to the cluster's S3 bucket, which encrypts it with the
# cluster key (cdk/constructs/backups.py). README "Back up and restore etcd".
set -euo pipefail
umask 077

SPR_LIB="${SPR_LIB:-${SPR_ROOT:-}/usr/local/lib/spiderpool-rdma}"
# shellcheck source=/dev/null
source "${SPR_ROOT:-}/etc/spiderpool-rdma/node.env"
# shellcheck source=lib.sh
source "${SPR_LIB}/lib.sh"
# shellcheck source=etcd.sh
source "${SPR_LIB}/etcd.sh"

SPR_STEP="etcd-backup"
WORK="${SPR_STATE}/etcd-backup"

# backup: snapshot (etcdctl of the image kubeadm runs etcd from, so client and server agree), its status as etcdutl
# reads it (the snapshot's integrity), the CA files, their digests, one archive, one upload.
backup() {
  local image bucket stamp key work="${WORK}"
  image="$(etcd_image)"
  bucket="$(ssm_get etcd-backup-bucket)"
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  rm -rf "${work}"
  mkdir -p "${work}/backup"
  trap 'rm -rf "${WORK}"' EXIT # the archive holds every Secret of the cluster: nothing stays on disk
  etcd_tool "${image}" "backup-${stamp}" \
    --mount "type=bind,src=${ETCD_PKI},dst=${ETCD_PKI},options=rbind:ro" \
    --mount "type=bind,src=${work}/backup,dst=/backup,options=rbind:rw" \
    -- /usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert="${ETCD_PKI}/ca.crt" \
    --cert="${ETCD_PKI}/healthcheck-client.crt" --key="${ETCD_PKI}/healthcheck-client.key" \
    snapshot save /backup/snapshot.db
  etcd_tool "${image}" "status-${stamp}" \
    --mount "type=bind,src=${work}/backup,dst=/backup,options=rbind:ro" \
    -- /usr/local/bin/etcdutl --write-out=json snapshot status /backup/snapshot.db >"${work}/backup/status.json"
  printf '%s\n' "${image}" >"${work}/backup/etcd-image" # the restore's etcdutl: the snapshot's own version
  (cd "${SPR_ROOT}/etc/kubernetes" && cp --parents "${CA_FILES[@]}" "${work}/backup/")
  # the key of the Secrets in the snapshot: without it they cannot be read (only this node keeps it, init.sh)
  install -m 0600 "${SPR_ROOT}${SPR_ENCRYPTION_CONFIG}" "${work}/backup/encryption-config.yaml"
  (cd "${work}/backup" && sha256sum snapshot.db status.json etcd-image encryption-config.yaml "${CA_FILES[@]}" >SHA256SUMS)
  tar -czf "${work}/backup.tar.gz" -C "${work}/backup" .
  key="${BACKUP_PREFIX}${SPR_NODE_NAME}/${stamp}.tar.gz"
  retry 5 30 "${AWS}" s3 cp --region "${SPR_REGION}" --only-show-errors "${work}/backup.tar.gz" "s3://${bucket}/${key}"
  log "saved s3://${bucket}/${key} ($(wc -c <"${work}/backup.tar.gz") bytes)"
}

backup >>"${SPR_LOG_DIR}/etcd-backup.log" 2>&1
