"""What a pod's efadv_query_device() reports for the EFA of each kind of instance, as far as published sources say.

- rdma-core providers/efa/efadv.h (enum, lines 20-26): EFADV_DEVICE_ATTR_CAPS_RDMA_READ = 1 << 0, RNR_RETRY = 1 << 1,
  CQ_WITH_SGID = 1 << 2, RDMA_WRITE = 1 << 3, UNSOLICITED_WRITE_RECV = 1 << 4; Linux drivers/infiniband/hw/efa/
  efa_verbs.c efa_query_device sets the user-visible bits from the device's own attributes.
- Amazon EC2 User Guide, "Elastic Fabric Adapter" (efa.html): "EFA supports RDMA (Remote Direct Memory Access) write on
  most supported instance types that have Nitro version 4 and later. RDMA read is supported on all instances with
  Nitro version 4 and later." c5n (the project's default worker family) predates Nitro v4: SEND over SRD only.

No captured efadv or `ibv_devinfo -v` output of a real device was found to copy: each set holds the read/write bits
the statement above implies, plus other bits a device may report (the choice must ignore them).
"""

from __future__ import annotations

READ, RNR_RETRY, CQ_WITH_SGID, WRITE, UNSOLICITED_WRITE_RECV = (1 << n for n in range(5))

GENERATIONS = {
    "before Nitro v4 (c5n)": RNR_RETRY,
    "Nitro v4+ without RDMA write": READ | RNR_RETRY | CQ_WITH_SGID,
    "Nitro v4+ with RDMA write": READ | RNR_RETRY | CQ_WITH_SGID | WRITE | UNSOLICITED_WRITE_RECV,
}
