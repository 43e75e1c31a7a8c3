"""`spider-validate watch`: the loop of probes, audit and pools, its Prometheus metrics, the exhaustion forecast.
May import actions, ipam, cloud, engine, probes, cluster and names."""
