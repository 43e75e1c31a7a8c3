"""Where each command the bootstrap runs lives on an Ubuntu 24.04 EC2 node, and when it appears there.

The sandbox installs every stand-in at its real path under the sandbox root, and runs the bootstrap with
systemd's PATH mapped into that root, so a command is found by its bare name only where the real one is.
Ubuntu 24.04 has a merged /usr: /bin and /sbin are symlinks to usr/bin and usr/sbin (the sandbox too).
"""

from __future__ import annotations

#: The PATH systemd gives a system service (systemd.exec(5), "Environment Variables in Spawned Processes":
#: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"). No login profile is read: /etc/profile.d/efa.sh
#: (the EFA installer's PATH addition) and /etc/environment never apply to a unit. snapd's
#: snapd-env-generator may add /snap/bin on a real node; the bootstrap does not rely on it.
SYSTEMD_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

#: Tools of the Ubuntu 24.04 server cloud image that the bootstrap uses as they are: the host's real binaries, linked
#: at their path in the image (coreutils, bash, sed, mawk, grep, tar, gzip, gnupg, gpgv as apt uses it, python3).
_IMAGE_TOOLS = """bash sh python3 awk sed grep date mkdir chmod cat touch rm mktemp dirname tail head tr env tar gzip
gpg gpgv sha256sum cut install cp mv ln id sort tee basename readlink base64 openssl wc timeout"""
REAL_TOOLS = {name: "usr/bin/" + name for name in _IMAGE_TOOLS.split()}

#: Commands of the image that the sandbox replaces by the recording stub (package: path in its .deb or snap).
IMAGE_STUBS = {
    "apt-get": "usr/bin/apt-get",  # apt
    "apt-mark": "usr/bin/apt-mark",  # apt
    "apt-cache": "usr/bin/apt-cache",  # apt
    "systemctl": "usr/bin/systemctl",  # systemd (Debian's package lists /bin/systemctl: merged /usr)
    "modprobe": "usr/sbin/modprobe",  # kmod (/sbin/modprobe in the package)
    "sysctl": "usr/sbin/sysctl",  # procps (/sbin/sysctl)
    "ip": "usr/bin/ip",  # iproute2 (/bin/ip)
    "rdma": "usr/bin/rdma",  # iproute2
    "curl": "usr/bin/curl",  # curl
    "snap": "usr/bin/snap",  # snapd
    "sleep": "usr/bin/sleep",  # coreutils (/bin/sleep): stubbed only to keep backoff tests fast
    "uname": "usr/bin/uname",  # coreutils (/bin/uname): answers as an Ubuntu 24.04 EC2 node's kernel
}

#: Binaries that exist only once the bootstrap installed their package, and the install that brings them.
#: The stub of that install creates them; before it, calling one fails as on a fresh node (exit 127).
PACKAGE_STUBS = {
    # Ubuntu's containerd package; pkgs.k8s.io's kubelet, kubeadm and kubectl debs install to /usr/bin.
    "containerd": {"containerd": "usr/bin/containerd", "ctr": "usr/bin/ctr"},  # Ubuntu's containerd ships ctr
    "kubelet": {"kubelet": "usr/bin/kubelet"},
    # pkgs.k8s.io's kubeadm depends on cri-tools, which brings crictl.
    "kubeadm": {"kubeadm": "usr/bin/kubeadm", "crictl": "usr/bin/crictl"},
    "kubectl": {"kubectl": "usr/bin/kubectl"},
    "ibverbs-utils": {"ibv_devinfo": "usr/bin/ibv_devinfo"},
    "perftest": {"ib_write_bw": "usr/bin/ib_write_bw"},
    # `snap install aws-cli`: snapd exposes app `aws` of snap `aws-cli` as /snap/bin/aws-cli.aws (snapd's
    # snap.JoinSnapApp: "<snap>.<app>" unless both names are equal); the `aws` alias is store-granted.
    "snap:aws-cli": {"aws": "snap/bin/aws-cli.aws"},
    # The EFA installer puts libfabric's tools in /opt/amazon/efa/bin (AWS EFA user guide, "Install the EFA
    # software"; it adds that directory to PATH only in /etc/profile.d/efa.sh).
    "efa-installer": {"fi_info": "opt/amazon/efa/bin/fi_info"},
}
