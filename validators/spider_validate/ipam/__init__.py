"""IPAM: the consistency audit (its index and rules) and the ipam suite's own pools.
May import engine, probes, cluster and names."""
