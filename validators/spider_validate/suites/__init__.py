"""The suites: each a list of tests (a new test is one more entry in one of these lists), and `all_tests`.
May import actions, ipam, engine, probes, cluster and names."""

from __future__ import annotations

from spider_validate.engine.test import Test
from spider_validate.suites import apps, connectivity, ipam, perf, preflight, rdma


def all_tests() -> list[Test]:
    return [*preflight.TESTS, *connectivity.TESTS, *apps.TESTS, *ipam.TESTS, *rdma.TESTS, *perf.TESTS]
