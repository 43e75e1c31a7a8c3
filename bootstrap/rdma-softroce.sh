# shellcheck shell=bash
# Soft-RoCE: an rxe device over the underlay ENI, created by a unit at every boot (RoCEv2, UDP 4791).

softroce() {
  local kernel
  kernel="$(uname -r)"
  retry 5 10 apt-get update -q
  # rdma_rxe is in linux-modules-extra: the running kernel's for now, and the flavour's meta-package (for example
  # linux-modules-extra-aws for 6.8.0-1015-aws) so that the kernel an upgrade installs has it too.
  apt_install "linux-modules-extra-${kernel}" "linux-modules-extra-${kernel##*-}"
  write_file /etc/systemd/system/spiderpool-rdma-rxe.service 0644 <<UNIT
[Unit]
Description=Soft-RoCE device rxe0 on ${SPR_UNDERLAY_IF}
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStartPre=/usr/sbin/modprobe rdma_rxe
ExecStart=/bin/sh -c 'rdma link show rxe0 >/dev/null 2>&1 || rdma link add rxe0 type rxe netdev ${SPR_UNDERLAY_IF}'
ExecStop=/bin/sh -c 'rdma link delete rxe0 || true'

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable --now spiderpool-rdma-rxe.service
}

softroce_verify() {
  rdma link show rxe0
}

rdma_steps() {
  step rdma-tools rdma_tools
  step softroce softroce
  step softroce-verify softroce_verify
}
