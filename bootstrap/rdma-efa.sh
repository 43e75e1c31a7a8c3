# shellcheck shell=bash
# EFA: the AWS installer at a pinned version, its GPG signature verified before it runs.

efa_installer() {
  local tmp="${SPR_ROOT}/var/lib/spiderpool-rdma/efa" tarball="aws-efa-installer-${SPR_EFA_VERSION}.tar.gz" key
  mkdir -p "${tmp}"
  retry 5 10 curl -fsSL -o "${tmp}/aws-efa-installer.key" "https://efa-installer.amazonaws.com/aws-efa-installer.key"
  key="$(gpg --show-keys --with-colons "${tmp}/aws-efa-installer.key" | awk -F: '/^fpr:/ {print $10; exit}')"
  [[ "${key}" == "${SPR_EFA_KEY_FINGERPRINT}" ]] ||
    die "EFA installer key has fingerprint '${key}', expected ${SPR_EFA_KEY_FINGERPRINT}"
  retry 5 10 curl -fsSL -o "${tmp}/${tarball}" "https://efa-installer.amazonaws.com/${tarball}"
  retry 5 10 curl -fsSL -o "${tmp}/${tarball}.sig" "https://efa-installer.amazonaws.com/${tarball}.sig"
  gpg --no-default-keyring --keyring "${tmp}/efa.gpg" --import "${tmp}/aws-efa-installer.key"
  gpg --no-default-keyring --keyring "${tmp}/efa.gpg" --verify "${tmp}/${tarball}.sig" "${tmp}/${tarball}" ||
    die "signature of ${tarball} does not verify: not running it"
  tar -xzf "${tmp}/${tarball}" -C "${tmp}"
  (cd "${tmp}/aws-efa-installer" && ./efa_installer.sh -y)
}

efa_tuning() {
  write_file /etc/sysctl.d/91-efa.conf 0644 <<CONF
kernel.yama.ptrace_scope = 0
vm.nr_hugepages = ${SPR_HUGEPAGES}
CONF
  sysctl --system
}

# The installer may load new kernel modules that need a reboot; the unit resumes after it. Once only:
# a reboot-required flag that another package keeps must not loop the node.
efa_reboot_if_needed() {
  if [[ -e "${SPR_ROOT}/var/run/reboot-required" && ! -e "${SPR_STATE}/done/efa-reboot" ]]; then
    log "reboot required by the EFA installer; the bootstrap resumes after it"
    touch "${SPR_STATE}/done/efa-reboot"
    systemctl reboot
    exit 0
  fi
}

efa_verify() {
  fi_info -p efa -t FI_EP_RDM
}

rdma_steps() {
  step efa-installer efa_installer
  step efa-tuning efa_tuning
  efa_reboot_if_needed
  step rdma-tools rdma_tools
  step efa-verify efa_verify
}
