"""Actions that run the probes' commands in pods through the run's context: reachability, the RDMA fabric's proof.
May import engine, probes, cluster and names."""
