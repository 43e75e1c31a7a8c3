"""IPAM: the consistency audit (its index and rules), its reconciliation with the cloud, the ipam suite's pools.
May import engine, probes, cluster, cloud and names."""
