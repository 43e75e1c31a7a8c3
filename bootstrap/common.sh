# shellcheck shell=bash
# Steps every node runs: host network guard, kernel, containerd, Kubernetes packages, kubelet.

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

aws_cli() {
  command -v aws || snap install aws-cli --classic
}

containerd_runtime() {
  retry 5 10 apt-get update -q
  apt_install containerd
  mkdir -p "${SPR_ROOT}/etc/containerd"
  containerd config default | sed 's/SystemdCgroup = false/SystemdCgroup = true/' \
    | write_file /etc/containerd/config.toml 0644
  # RDMA needs locked memory in containers (registered memory regions).
  write_file /etc/systemd/system/containerd.service.d/memlock.conf 0644 <<'CONF'
[Service]
LimitMEMLOCK=infinity
CONF
  systemctl daemon-reload
  systemctl enable containerd
  systemctl restart containerd
}

kubernetes_packages() {
  local repo="https://pkgs.k8s.io/core:/stable:/v${SPR_K8S_MINOR}/deb/" key tmp
  tmp="$(mktemp -d)"
  retry 5 10 curl -fsSL -o "${tmp}/Release.key" "${repo}Release.key"
  key="$(gpg --show-keys --with-colons "${tmp}/Release.key" | awk -F: '/^fpr:/ {print $10; exit}')"
  [[ "${key}" == "${SPR_K8S_KEY_FINGERPRINT}" ]] ||
    die "pkgs.k8s.io signing key has fingerprint '${key}', expected ${SPR_K8S_KEY_FINGERPRINT}"
  mkdir -p "${SPR_ROOT}/etc/apt/keyrings"
  gpg --dearmor --yes -o "${SPR_ROOT}/etc/apt/keyrings/kubernetes.gpg" "${tmp}/Release.key"
  rm -rf "${tmp}"
  echo "deb [signed-by=/etc/apt/keyrings/kubernetes.gpg] ${repo} /" |
    write_file /etc/apt/sources.list.d/kubernetes.list 0644
  retry 5 10 apt-get update -q
  apt_install kubelet kubeadm kubectl
  apt-mark hold kubelet kubeadm kubectl
  systemctl enable kubelet
}
