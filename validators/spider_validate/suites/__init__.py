"""The suites: each a list of tests. A new test is one more entry in one of these lists."""

from __future__ import annotations

from spider_validate.model import Test
from spider_validate.suites import apps, connectivity, ipam, perf, preflight, rdma


def all_tests() -> list[Test]:
    return [*preflight.TESTS, *connectivity.TESTS, *apps.TESTS, *ipam.TESTS, *rdma.TESTS, *perf.TESTS]
