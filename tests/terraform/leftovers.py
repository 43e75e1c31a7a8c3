"""The emulated account's sweep: ops/leftovers.py's listers with boto3 clients of a moto server."""

from __future__ import annotations

from typing import Any

import boto3

from ops import leftovers
from ops.leftovers import LISTERS

__all__ = ["LISTERS", "client", "tagged"]


def client(service: str, url: str, region: str) -> Any:
    """A boto3 client of the emulated account behind `url`."""
    return boto3.client(
        service, endpoint_url=url, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def tagged(url: str, region: str, key: str, value: str) -> dict[str, list[str]]:
    """Everything that still exists in the account behind `url` and carries the tag key=value, by lister."""
    return leftovers.tagged(lambda service: client(service, url, region), key, value)
