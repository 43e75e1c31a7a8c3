# shellcheck shell=bash
# EFA: the AWS installer at a pinned version, its GPG signature verified before it runs.

# libfabric's tools by their real path: the installer adds /opt/amazon/efa/bin to PATH only in
# /etc/profile.d/efa.sh, which login shells read and systemd units never do.
FI_INFO="${SPR_ROOT}/opt/amazon/efa/bin/fi_info"

efa_installer() {
  local dir="${SPR_STATE}/efa" url="https://efa-installer.amazonaws.com" tarball="aws-efa-installer-${SPR_EFA_VERSION}.tar.gz"
  mkdir -p "${dir}"
  gpg_home
  fetch_key "${url}/aws-efa-installer.key" "${dir}/aws-efa-installer.key" "${SPR_EFA_KEY_FINGERPRINT}"
  retry 5 10 curl -fsSL -o "${dir}/${tarball}" "${url}/${tarball}"
  retry 5 10 curl -fsSL -o "${dir}/${tarball}.sig" "${url}/${tarball}.sig"
  verify_signature "${dir}/${tarball}.sig" "${dir}/${tarball}" "${dir}/aws-efa-installer.key" "${SPR_EFA_KEY_FINGERPRINT}"
  rm -rf "${GNUPGHOME}"
  tar -xzf "${dir}/${tarball}" -C "${dir}"
  # Its apt calls wait for the lock and retry downloads (apt_settings); the whole run is retried too.
  (cd "${dir}/aws-efa-installer" && retry 3 30 ./efa_installer.sh -y)
}

# Hugepages for libfabric. Yama's ptrace_scope stays 1: 0 would let any process trace every other of its user; the
# shm provider uses SAR where CMA is not allowed (libfabric man/fi_shm.7.md), and an MPI job that wants CMA can allow
# its peers itself (prctl PR_SET_PTRACER, the kernel's Documentation/admin-guide/LSM/Yama.rst).
efa_tuning() {
  write_file /etc/sysctl.d/91-efa.conf 0644 <<CONF
vm.nr_hugepages = ${SPR_HUGEPAGES}
CONF
  sysctl --system
}

# The installer may load new kernel modules that need a reboot; the unit resumes after it.
efa_reboot_if_needed() {
  if [[ -e "${SPR_ROOT}/var/run/reboot-required" ]]; then
    reboot_once efa-reboot "the EFA installer requires a reboot"
  fi
}

efa_verify() {
  "${FI_INFO}" -p efa -t FI_EP_RDM
}

rdma_steps() {
  step efa-installer efa_installer
  step efa-tuning efa_tuning
  efa_reboot_if_needed
  step rdma-tools rdma_tools
  step efa-verify efa_verify
}
