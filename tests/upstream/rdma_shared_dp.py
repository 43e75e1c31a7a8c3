"""How Mellanox k8s-rdma-shared-dev-plugin v1.5.3 (the image Spiderpool's chart 1.2.2 ships) starts and finds devices.

- cmd/k8s-rdma-shared-dp/main.go:70-80: ReadConfig, ValidateConfigs, ValidateRdmaSystemMode, each fatal ("Exiting..").
- pkg/resources/resources_manager.go:96-129 (ReadConfig): the JSON config file; periodicUpdateInterval (seconds, default
  60). :131-181 (ValidateConfigs): the interval not negative; at least one configList entry; each resourceName
  `^[a-zA-Z0-9_]+$` (:287-291) and unique; rdmaHcaMax not negative; "selectors" or the deprecated "devices" (then
  used as ifNames), not both (utils.go:55-66 IsEmptySelector: every selector list empty). :183-199
  (ValidateRdmaSystemMode): the RDMA subsystem must not be in exclusive netns mode.

- pkg/resources/resources_manager.go:293-337 (DiscoverHostDevices): only PCI devices of class 0x02 (network).
- pkg/resources/pci_net_device.go:26-70 (NewPciNetDevice): ifName is the first name under
  /sys/bus/pci/devices/<pci>/net (utils.go:68-85, GetNetNames); the RDMA devices are those under
  /sys/bus/pci/devices/<pci>/infiniband (rdma_device_spec.go:25-37 -> Mellanox/rdmamap v1.1.0 rdma_map.go:383-386,
  GetRdmaDevicesForPcidev); a device without the rdma_cm, umad and uverbs character devices is dropped
  (rdma_device_spec.go:19, 39-47: "missing RDMA device spec").
- resources_manager.go:351-380 (GetFilteredDevices): vendors, deviceIDs, drivers, ifNames, linkTypes, ANDed;
  device_selectors.go:56-64: ifNames compares the PCI device's netdev name.
- Soft-RoCE: Linux drivers/infiniband/sw/rxe/rxe_verbs.c (rxe_register_device) registers rxe with
  `ib_register_device(dev, ibdev_name, NULL)` and no parent device: rxe0 is expected under
  /sys/devices/virtual/infiniband, not under the ENA's PCI directory. Only a node can confirm which one it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

REQUIRED_CHAR_DEVICES = ("rdma_cm", "umad", "uverbs")
_SELECTORS = ("vendors", "deviceIDs", "drivers", "ifNames", "linkTypes")  # pkg/types/types.go:32-38


def start_refusal(config: dict[str, Any], netns_mode: str = "shared") -> str | None:
    """Why the plugin exits at start with this config file (main.go's order), or None when it goes on."""
    interval = config.get("periodicUpdateInterval")
    if interval is not None and interval < 0:
        return f'invalid "periodicUpdateInterval" configuration "{interval}"'
    entries = config.get("configList") or []
    if not entries:
        return "no resources configuration found"
    seen: set[str] = set()
    for conf in entries:
        name = conf.get("resourceName", "")
        if not re.fullmatch(r"[a-zA-Z0-9_]+", name):
            return f'error: resource name "{name}" contains invalid characters'
        if name in seen:
            return f'error: resource name "{name}" already exists'
        if conf.get("rdmaHcaMax", 0) < 0:
            return f"error: Invalid value for rdmaHcaMax < 0: {conf['rdmaHcaMax']}"
        empty = not any((conf.get("selectors") or {}).get(k) for k in _SELECTORS)
        if empty and not conf.get("devices"):
            return 'error: configuration missmatch. neither "selectors" nor "devices" fields exits'
        if not empty and conf.get("devices"):
            return 'configuration mismatch. Cannot specify both "selectors" and "devices" fields'
        seen.add(name)
    return "incorrect RDMA subsystem network namespace" if netns_mode == "exclusive" else None


@dataclass(frozen=True)
class PciDevice:
    address: str
    pci_class: int
    vendor: str
    device_id: str
    driver: str
    netdevs: tuple[str, ...]
    link_type: str = "ether"
    #: RDMA devices under /sys/bus/pci/devices/<address>/infiniband, with their character devices
    rdma: dict[str, tuple[str, ...]] = field(default_factory=dict)


def exposed_devices(devices: list[PciDevice], selectors: dict[str, Any]) -> list[PciDevice]:
    """The devices one configList entry's resource is built from (0 means the resource has no device)."""
    found = []
    for dev in devices:
        if dev.pci_class != 0x02:
            continue
        chars = [c for rdma in dev.rdma.values() for c in rdma]
        if not all(any(req in c for c in chars) for req in REQUIRED_CHAR_DEVICES):
            continue
        found.append(dev)
    checks = {
        "vendors": lambda d: d.vendor,
        "deviceIDs": lambda d: d.device_id,
        "drivers": lambda d: d.driver,
        "ifNames": lambda d: d.netdevs[0] if d.netdevs else "",
        "linkTypes": lambda d: d.link_type,
    }
    for key, attr in checks.items():
        if selectors.get(key):
            found = [d for d in found if attr(d) in selectors[key]]
    return found


#: rxe0's character devices (ib_uverbs and ib_umad register one per RDMA device; rdma_cm is shared)
RXE_CHARS = ("/dev/infiniband/uverbs0", "/dev/infiniband/umad0", "/dev/infiniband/issm0", "/dev/infiniband/rdma_cm")


def nitro_ena(rxe_under_pci: bool) -> list[PciDevice]:
    """A Nitro instance's primary ENA (Amazon vendor 1d0f, ENA device ec20, driver ena, netdev ens5) with rxe0 on it."""
    return [
        PciDevice(
            "0000:00:05.0", 0x02, "1d0f", "ec20", "ena", ("ens5",), rdma={"rxe0": RXE_CHARS} if rxe_under_pci else {}
        )
    ]
