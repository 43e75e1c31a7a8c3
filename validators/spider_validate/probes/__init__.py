"""Probes: pure command builders and output parsers of what runs in pods (ping/curl, RDMA, perf, counters, line rate).
May import names only (nothing else of spider_validate)."""
