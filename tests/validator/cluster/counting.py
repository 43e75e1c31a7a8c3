"""A Cluster that counts the calls made through it, by method: the API cost the scale claims are about, measured
at the interface every API call of the validator goes through (cluster/api.py's Cluster)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from spider_validate.cluster.api import Cluster

METHODS = ("server_version", "crd_names", "list", "get", "create", "delete", "watch", "exec", "logs")


class CountingCluster:
    """Every Cluster method of `inner`, counted in `calls` (a watch counts once, however many events it yields)."""

    def __init__(self, inner: Cluster) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in METHODS:
            return attr
        return self._counted(name, attr)

    def _counted(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
            return fn(*args, **kwargs)

        return call

    def reset(self) -> Counter[str]:
        """The counts so far, and zero from now on."""
        with self._lock:
            counts, self.calls = self.calls, Counter()
        return counts
