#!/usr/bin/env bash
# Rebuilds the cluster on a replaced control-plane-0 from a backup of etcd-backup.sh (README "Back up and restore
# etcd"): run through SSM when its bootstrap stopped because the cluster exists and no control plane answers.
#   etcd-restore.sh [KEY]   KEY: the archive's object key in the bucket; by default the newest
# It checks the archive against its digests, puts the certificate authorities and the Secrets' encryption key back,
# restores etcd's data directory
# with etcdutl (a new one-member cluster of this node, revisions moved past the old ones) and starts the bootstrap
# again, whose kubeadm init then keeps both.
set -euo pipefail
umask 077

SPR_LIB="${SPR_LIB:-${SPR_ROOT:-}/usr/local/lib/spiderpool-rdma}"
# shellcheck source=/dev/null
source "${SPR_ROOT:-}/etc/spiderpool-rdma/node.env"
# shellcheck source=lib.sh
source "${SPR_LIB}/lib.sh"
# shellcheck source=etcd.sh
source "${SPR_LIB}/etcd.sh"

SPR_STEP="etcd-restore"
RESTORE="${SPR_STATE}/etcd-restore"
# Past every revision the old cluster can have reached, so that no client (the API server's watch caches, controllers)
# sees revisions go back; the latest one marked compacted, so that watches from an old revision are refused, not
# silently served (etcdutl snapshot restore --bump-revision, --mark-compacted: etcd PR 16029, issue 16028).
REVISION_BUMP=1000000000

# newest_backup BUCKET: the key of the last archive uploaded, by any control plane.
newest_backup() {
  "${AWS}" s3api list-objects-v2 --region "${SPR_REGION}" --bucket "$1" --prefix "${BACKUP_PREFIX}" \
    --query 'sort_by(Contents, &LastModified)[-1].Key' --output text
}

restore() {
  local bucket key image peer
  [[ "${SPR_ROLE}" == control-plane-init ]] || die "restore control-plane-0, not ${SPR_NODE_NAME}"
  [[ ! -e "${SPR_STATE}/done/kubeadm-init" ]] || die "${SPR_NODE_NAME} already runs a cluster: a restore replaces it first"
  [[ -e "${SPR_STATE}/done/kubernetes-packages" ]] || die "kubeadm is not installed yet: wait for the bootstrap to stop"
  bucket="$(ssm_get etcd-backup-bucket)"
  key="${1:-$(newest_backup "${bucket}")}"
  [[ "${key}" == "${BACKUP_PREFIX}"*.tar.gz ]] || die "no backup archive in s3://${bucket}/${BACKUP_PREFIX} ('${key}')"
  rm -rf "${RESTORE}"
  mkdir -p "${RESTORE}/backup"
  retry 5 30 "${AWS}" s3 cp --region "${SPR_REGION}" --only-show-errors "s3://${bucket}/${key}" "${RESTORE}/backup.tar.gz"
  tar -xzf "${RESTORE}/backup.tar.gz" -C "${RESTORE}/backup"
  (cd "${RESTORE}/backup" && sha256sum --check --strict --quiet SHA256SUMS) || die "${key} does not match its digests"
  kubeadm reset --force # what an earlier init or restore left: its data directory, certificates, manifests
  (cd "${RESTORE}/backup" && cp --parents "${CA_FILES[@]}" "${SPR_ROOT}/etc/kubernetes/")
  install -D -m 0600 "${RESTORE}/backup/encryption-config.yaml" "${SPR_ROOT}${SPR_ENCRYPTION_CONFIG}"
  # etcdutl of the etcd that took the snapshot: a restore across minor versions is not supported (etcd "Disaster
  # recovery"; Kubernetes "Operating etcd clusters": restore snapshots of the same major.minor).
  image="$(cat "${RESTORE}/backup/etcd-image")"
  retry 5 30 ctr --namespace k8s.io images pull "${image}"
  peer="https://${SPR_NODE_IP}:2380"
  etcd_tool "${image}" "restore" --mount "type=bind,src=/var/lib,dst=/var/lib,options=rbind:rw" -- \
    /usr/local/bin/etcdutl snapshot restore "${RESTORE#"${SPR_ROOT}"}/backup/snapshot.db" --data-dir /var/lib/etcd \
    --name "${SPR_NODE_NAME}" --initial-cluster "${SPR_NODE_NAME}=${peer}" --initial-advertise-peer-urls "${peer}" \
    --bump-revision "${REVISION_BUMP}" --mark-compacted
  touch "${SPR_STATE}/etcd-restored" # kubeadm init keeps the data directory (init.sh)
  rm -rf "${RESTORE}"
  log "restored ${key}; the bootstrap continues with kubeadm init on the restored data"
  systemctl reset-failed spiderpool-rdma-bootstrap.service
  systemctl start --no-block spiderpool-rdma-bootstrap.service
}

restore "$@" >>"${SPR_LOG_DIR}/etcd-restore.log" 2>&1
