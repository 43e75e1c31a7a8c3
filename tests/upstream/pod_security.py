"""Pod Security Admission's baseline level, the parts the validator's pods touch, from
kubernetes/kubernetes staging/src/k8s.io/pod-security-admission/policy/:

- check_capabilities_baseline.go (capabilities_allowed_1_0, lines 61-75 at 003effe9): an added capability must be
  one of the container runtime's defaults below; NET_RAW and IPC_LOCK are not.
- check_hostNamespaces.go (hostNamespaces_1_0, line 59 at 696d0f57): hostNetwork, hostPID and hostIPC must be unset.
- check_sysctls.go (sysctls_allowed_1_0, lines 67-73 at 04791b49): only the safe, namespaced sysctls; later
  Kubernetes versions add to the set, never remove, so the 1.0 set is allowed everywhere.
- check_privileged.go: no privileged container.

The privileged level allows everything; restricted is stricter than baseline and not used here.
"""

from __future__ import annotations

from typing import Any

BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    }
)
LEVELS = ("baseline", "privileged")


def baseline_violations(pod_spec: dict[str, Any]) -> list[str]:
    """What in `pod_spec` the baseline level forbids (empty: admitted), in PSA's own words."""
    found = []
    containers = [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]
    for c in containers:
        ctx = c.get("securityContext") or {}
        extra = sorted(set((ctx.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES)
        if extra:
            found.append(f"non-default capabilities: container {c['name']} adds {', '.join(extra)}")
        if ctx.get("privileged"):
            found.append(f"privileged: container {c['name']}")
    hosts = [h for h in ("hostNetwork", "hostPID", "hostIPC") if pod_spec.get(h)]
    if hosts:
        found.append(f"host namespaces: {', '.join(hosts)}")
    sysctls = [s["name"] for s in (pod_spec.get("securityContext") or {}).get("sysctls", []) or []]
    forbidden = [s for s in sysctls if s not in SAFE_SYSCTLS]
    if forbidden:
        found.append(f"forbidden sysctls: {', '.join(forbidden)}")
    return found


EXEMPT_NAMESPACES = ("kube-system",)  # bootstrap/admission-configuration.yaml, exemptions.namespaces


def admitted(namespace: dict[str, Any] | None, pod: dict[str, Any]) -> list[str]:
    """Why the namespace's enforced level refuses `pod` (empty: admitted). A namespace without the label (or not
    there) gets the cluster's default, baseline (bootstrap/admission-configuration.yaml, defaults.enforce)."""
    meta = (namespace or {}).get("metadata", {})
    if meta.get("name") in EXEMPT_NAMESPACES:
        return []
    level = meta.get("labels", {}).get("pod-security.kubernetes.io/enforce", "baseline")
    assert level in LEVELS, level
    return [] if level == "privileged" else baseline_violations(pod["spec"])
