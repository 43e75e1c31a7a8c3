# shellcheck shell=bash
# Soft-RoCE: an rxe device over the underlay ENI, created by a unit at every boot (RoCEv2, UDP 4791).

softroce() {
  retry 5 10 apt-get update -q
  apt_install "linux-modules-extra-$(uname -r)"
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
