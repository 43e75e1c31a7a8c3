"""The engine: the test and result model, the runner, the run's context, discovery, parameters, manifests, diagnostics.
May import probes, cluster and names."""
