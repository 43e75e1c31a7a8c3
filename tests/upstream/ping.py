"""Whether `ping` works in a pod, from the kernel's, runc's and containerd's rules.

- iputils ping (ping/ping.c, create_socket) opens a raw socket, which needs CAP_NET_RAW in the effective set, else an
  ICMP datagram socket, which the kernel allows to a process whose gid (or a supplementary group) is inside
  net.ipv4.ping_group_range (linux net/ipv4/ping.c, ping_init_sock); the kernel default is "1 0": nobody.
- Capabilities added to a container are effective only for uid 0: Kubernetes has no ambient capabilities, so for
  another uid they reach the bounding and permitted sets only (kubernetes/kubernetes issue 56374); with
  allowPrivilegeEscalation false (no_new_privs) not even a file capability on the binary raises them.
- containerd sets ping_group_range "0 2147483647" in every pod when the CRI option `enable_unprivileged_icmp` is on:
  off by default in 1.7 (pkg/cri/config/config_unix.go), on by default from 2.0. Ubuntu 24.04 ships containerd 1.7.
- Without runAsGroup, the process' gid is the image user's, 0 for a uid the image's /etc/passwd does not list.
"""

from __future__ import annotations

from typing import Any

KERNEL_DEFAULT_RANGE = (1, 0)
CONTAINERD_2_RANGE = (0, 2147483647)


def ping_works(pod_spec: dict[str, Any], container: dict[str, Any], runtime_range: tuple[int, int]) -> bool:
    pod_ctx = pod_spec.get("securityContext") or {}
    ctx = {**pod_ctx, **(container.get("securityContext") or {})}
    uid = ctx.get("runAsUser", 0)
    added = set((ctx.get("capabilities") or {}).get("add") or [])
    if uid == 0 and ("NET_RAW" in added or "ALL" not in set((ctx.get("capabilities") or {}).get("drop") or [])):
        return True
    sysctls = {s["name"]: s["value"] for s in pod_ctx.get("sysctls") or []}
    low, high = (
        tuple(int(x) for x in sysctls["net.ipv4.ping_group_range"].split())
        if "net.ipv4.ping_group_range" in sysctls
        else runtime_range
    )
    groups = {ctx.get("runAsGroup", 0), *pod_ctx.get("supplementalGroups", [])}
    return any(low <= g <= high for g in groups)
