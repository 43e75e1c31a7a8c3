"""Reports: table, JSON and JUnit of the one result model, the run's environment, the HTML report.
May import engine, probes, cluster and names."""
