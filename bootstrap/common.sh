# shellcheck shell=bash
# Steps every node runs: apt settings, underlay interface, host network guard, kernel, containerd, Kubernetes
# packages, the kubelet's ECR credential provider.

IMDS="http://169.254.169.254/latest"

# Every apt and dpkg call on this node, the EFA installer's included (which neither waits for the dpkg lock that
# unattended-upgrades may hold at first boot nor retries a download), waits for the lock and retries downloads.
apt_settings() {
  write_file /etc/apt/apt.conf.d/90spiderpool-rdma 0644 <<'CONF'
DPkg::Lock::Timeout "600";
Acquire::Retries "5";
CONF
}

# The primary ENI's interface, found by the MAC that IMDS gives for the primary ENI, must be SPR_UNDERLAY_IF: the
# chart's ipvlan master on every worker (ens5 on Nitro types with one network card). A type that names it otherwise
# (multi-card types such as p4d or p5 name interfaces by PCI path) gets it renamed at the next boot: cloud-init's
# netplan definition of the primary interface is named after it and matched by MAC, and a later netplan file that
# gives the same definition a set-name amends it (netplan merges definitions of one ID, later files win). Runs at
# every start: it is cheap, and it checks that the rename took effect.
underlay_interface() {
  local token mac dev found=""
  token="$(retry 5 5 curl -fsS -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "${IMDS}/api/token")"
  mac="$(retry 5 5 curl -fsS -H "X-aws-ec2-metadata-token: ${token}" "${IMDS}/meta-data/mac")"
  for dev in "${SPR_ROOT}"/sys/class/net/*; do
    # Physical devices only: an ipvlan or macvlan link on the host would carry the same MAC.
    if [[ -e "${dev}/device" && "$(cat "${dev}/address")" == "${mac}" ]]; then
      found="$(basename "${dev}")"
    fi
  done
  [[ "${found}" == "${SPR_UNDERLAY_IF}" ]] && return 0
  [[ -n "${found}" ]] || die "no interface has the primary ENI's MAC ${mac}"
  [[ ! -e "${SPR_STATE}/done/underlay-rename" ]] ||
    die "the primary ENI (MAC ${mac}) is still '${found}' after a reboot to rename it ${SPR_UNDERLAY_IF}"
  [[ ! -e "${SPR_ROOT}/sys/class/net/${SPR_UNDERLAY_IF}" ]] ||
    die "the primary ENI (MAC ${mac}) is '${found}' and another interface is ${SPR_UNDERLAY_IF}: cannot rename it"
  write_file /etc/netplan/90-spiderpool-rdma-underlay.yaml 0600 <<YAML
network:
  version: 2
  ethernets:
    ${found}:
      set-name: ${SPR_UNDERLAY_IF}
YAML
  reboot_once underlay-rename "renaming the primary ENI's interface ${found} to ${SPR_UNDERLAY_IF}"
}

# The pod IPs (ENI /28 prefixes) belong to pods on ipvlan, never to the host: an address on both breaks
# traffic. Remove any address of the reserved pod block that cloud-init or anything else put on the host.
guard_pod_addresses() {
  local addr
  for addr in $(ip -4 -o addr show dev "${SPR_UNDERLAY_IF}" | awk '{print $4}'); do
    if python3 -c 'import ipaddress,sys; sys.exit(0 if ipaddress.ip_interface(sys.argv[1]).ip in ipaddress.ip_network(sys.argv[2]) else 1)' \
      "${addr}" "${SPR_POD_BLOCK}"; then
      log "removing pod address ${addr} from host interface ${SPR_UNDERLAY_IF}"
      ip addr del "${addr}" dev "${SPR_UNDERLAY_IF}"
    fi
  done
}

# The IMDS guard (imds-guard.nft, loaded by spiderpool-rdma-imds-guard.service at every boot before the kubelet):
# pods must never get the node role's credentials. Enabled and loaded now, before any pod can run.
imds_guard() {
  apt_install nftables
  systemctl daemon-reload
  systemctl enable --now spiderpool-rdma-imds-guard.service
}

kernel() {
  write_file /etc/modules-load.d/kubernetes.conf 0644 <<'CONF'
overlay
br_netfilter
CONF
  modprobe overlay
  modprobe br_netfilter
  write_file /etc/sysctl.d/90-kubernetes.conf 0644 <<'CONF'
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
net.ipv4.ip_forward = 1
CONF
  sysctl --system
}

# snapd may still be seeding on first boot, and the store may be briefly unreachable: wait, then retry.
aws_cli() {
  if [[ ! -x "${AWS}" ]]; then
    retry 5 10 snap wait system seed.loaded
    retry 5 10 snap install aws-cli --classic
  fi
  "${AWS}" --version
}

# Whether a containerd configuration enables NRI: its section says disable = false. The section's name is quoted
# "..." by containerd 1.7 and '...' by 2.x (configuration version 3), which enables NRI by default.
nri_enabled() {
  awk '/^ *\[/ { nri = ($0 ~ /^ *\[plugins\..io\.containerd\.nri\.v1\.nri.\]/) }
       nri && /^ *disable = false/ { found = 1 } END { exit !found }' "$1"
}

containerd_runtime() {
  retry 5 10 apt-get update -q
  apt_install containerd
  mkdir -p "${SPR_ROOT}/etc/containerd"
  local edits=(-e 's/SystemdCgroup = false/SystemdCgroup = true/')
  if [[ ${SPR_RDMA_DEVICES} == dra ]]; then
    # aws-dranet acts on pods through NRI (kubernetes-sigs/dranet README; its chart mounts /var/run/nri), which
    # containerd 1.7, Ubuntu 24.04's, ships disabled: "changing disable = true to disable = false" in this section
    # (containerd docs/NRI.md, "Enabling NRI Support in Containerd").
    edits+=(-e '/^ *\[plugins\..io\.containerd\.nri\.v1\.nri.\]/,/^ *\[/ s/disable = true/disable = false/')
  fi
  containerd config default | sed "${edits[@]}" | write_file /etc/containerd/config.toml 0644
  if [[ ${SPR_RDMA_DEVICES} == dra ]] && ! nri_enabled "${SPR_ROOT}/etc/containerd/config.toml"; then
    die "containerd's configuration has no NRI section to enable: aws-dranet cannot serve EFA claims on this node"
  fi
  # RDMA needs locked memory in containers (registered memory regions).
  write_file /etc/systemd/system/containerd.service.d/memlock.conf 0644 <<'CONF'
[Service]
LimitMEMLOCK=infinity
CONF
  systemctl daemon-reload
  systemctl enable containerd
  systemctl restart containerd
}

# kubernetes_repository MINOR: apt's source for the packages of MINOR (pkgs.k8s.io has one repository per minor),
# signed by the pinned key; an upgrade moves it to the next minor (upgrade-node.sh).
kubernetes_repository() {
  local repo="https://pkgs.k8s.io/core:/stable:/v$1/deb/"
  gpg_home
  fetch_key "${repo}Release.key" "${GNUPGHOME}/Release.key" "${SPR_K8S_KEY_FINGERPRINT}"
  mkdir -p "${SPR_ROOT}/etc/apt/keyrings"
  gpg --batch --dearmor --yes -o "${SPR_ROOT}/etc/apt/keyrings/kubernetes.gpg" "${GNUPGHOME}/Release.key"
  rm -rf "${GNUPGHOME}"
  echo "deb [signed-by=/etc/apt/keyrings/kubernetes.gpg] ${repo} /" |
    write_file /etc/apt/sources.list.d/kubernetes.list 0644
  retry 5 10 apt-get update -q
}

# control-plane-0 of a new cluster installs the configured minor's newest patch and records it (control-plane.sh); every
# other node, and a control-plane-0 that replaces one of a cluster that exists, installs exactly the recorded version,
# from its minor's repository (an upgrade may have moved the cluster on), so that no two nodes run different patches.
kubernetes_packages() {
  local version="" minor="${SPR_K8S_MINOR}" pin=""
  if [[ "${SPR_ROLE}" != control-plane-init ]]; then
    version="$(wait_for_parameter kubernetes-version '^v[0-9]+\.[0-9]+\.[0-9]+$')"
  elif [[ "$(retry 5 10 ssm_get kubernetes-version)" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    version="${BASH_REMATCH[0]}"
  fi
  if [[ -n "${version}" ]]; then
    minor="$(cut -d. -f1,2 <<<"${version#v}")"
    pin="=${version#v}-*" # any pkgs.k8s.io revision (1.33.4-1.1), as kubeadm's upgrade guide installs one
  fi
  kubernetes_repository "${minor}"
  apt_install "kubelet${pin}" "kubeadm${pin}" "kubectl${pin}"
  apt-mark hold kubelet kubeadm kubectl
  if [[ -n "${version}" && "$(kubeadm version -o short)" != "${version}" ]]; then
    die "kubeadm $(kubeadm version -o short) is installed, not the cluster's ${version}"
  fi
  systemctl enable kubelet
}

# The kubelet's ECR credential provider (kubernetes/cloud-provider-aws), which the kubelet runs as root: the release
# file of the pinned version from artifacts.k8s.io (kops downloads from the same place), installed only if its SHA-256
# is the one the repository pins for this architecture (cdk/data/ecr_credential_provider.json). A digest published
# beside the file would catch corruption, not substitution; nothing downloaded runs before it is checked.
ecr_credential_provider() {
  local arch file url digest dir="${SPR_STATE}/ecr-credential-provider" bin="${SPR_ROOT}${SPR_CREDENTIAL_PROVIDER_BIN_DIR}"
  case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    *) die "no ecr-credential-provider release for $(uname -m)" ;;
  esac
  file="ecr-credential-provider-linux-${arch}"
  url="https://artifacts.k8s.io/binaries/cloud-provider-aws/${SPR_ECR_PROVIDER_VERSION}/linux/${arch}/${file}"
  mkdir -p "${dir}"
  retry 5 10 curl -fsSL -o "${dir}/${file}" "${url}"
  digest="$(sha256sum "${dir}/${file}" | cut -d' ' -f1)"
  if [[ "${digest}" != "${SPR_ECR_PROVIDER_SHA256}" ]]; then
    rm -f "${dir}/${file}"
    die "${file} has SHA-256 ${digest}, not ${SPR_ECR_PROVIDER_SHA256} pinned for ${SPR_ECR_PROVIDER_VERSION}: not installing it"
  fi
  install -D -m 0755 "${dir}/${file}" "${bin}/ecr-credential-provider"
}
