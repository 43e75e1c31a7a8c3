# shellcheck shell=bash disable=SC2034  # read by etcd-backup.sh and etcd-restore.sh, which source it
# etcd's own tools for the backup and the restore, run from the image kubeadm runs etcd from: registry.k8s.io/etcd is
# etcd's release image, promoted under kubeadm's tag (etcd Documentation/contributor-guide/bump_etcd_version_k8s.md),
# with etcd, etcdctl and etcdutl in /usr/local/bin (etcd Dockerfile). Nothing else is installed or downloaded.

ETCD_MANIFEST="${SPR_ROOT}/etc/kubernetes/manifests/etcd.yaml"
ETCD_PKI=/etc/kubernetes/pki/etcd
# Object keys in the bucket: etcd/<node>/<UTC time>.tar.gz.
BACKUP_PREFIX=etcd/
# What a control plane rebuilt from a snapshot needs besides etcd's data, relative to /etc/kubernetes: the CAs every
# node and client trusts, the key that signed every service account token (kubeadm keeps all of them when it finds
# them: "kubeadm init phase certs", "Using existing ... certificate authority").
CA_FILES=(pki/ca.crt pki/ca.key pki/sa.key pki/sa.pub pki/front-proxy-ca.crt pki/front-proxy-ca.key
  pki/etcd/ca.crt pki/etcd/ca.key)

# etcd_image: the image of the etcd static pod kubeadm wrote (after an upgrade, the upgraded one).
etcd_image() {
  local image
  image="$(awk '$1 == "image:" {print $2; exit}' "${ETCD_MANIFEST}" 2>/dev/null || true)"
  [[ -n "${image}" ]] || {
    log "no etcd image in ${ETCD_MANIFEST}: this node runs no etcd"
    return 1
  }
  printf '%s\n' "${image}"
}

# etcd_tool IMAGE NAME [CTR RUN OPTION...] -- COMMAND...: COMMAND in a container of IMAGE (in containerd's k8s.io
# namespace, where the kubelet's images are) on the host network, removed after it ran. ctr takes its options before
# the image, the image and the container's ID before the command (containerd cmd/ctr/commands/run/run.go).
etcd_tool() {
  local image="$1" name="$2" options=()
  shift 2
  while [[ "$1" != -- ]]; do
    options+=("$1")
    shift
  done
  shift
  ctr --namespace k8s.io run --rm --net-host "${options[@]}" "${image}" "spiderpool-rdma-etcd-${name}" "$@"
}
