"""The lab's StatefulSet controller (kubernetes' pkg/controller/statefulset) and Spiderpool's enableStatefulSet rule
(pkg/ipam/allocate.go, release.go, pkg/statefulsetmanager), on API objects only: no network namespace."""

from __future__ import annotations

import json
from typing import Any

import pytest
from spider_validate.cluster.spiderpool import IPPOOL, allocated_ips

from tests.lab.controllers import StatefulSets, new_pod
from tests.lab.ipam import Ipam
from tests.lab.kubelet import LabPod
from tests.lab.store import Store, api_version

NODE = "lab-node-0"


def stateful_set(replicas: int = 2, **spec: Any) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": "db"}, "annotations": {IPPOOL: json.dumps({"ipv4": ["sts"]})}},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    return {
        "apiVersion": api_version("StatefulSet"),
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "ns"},
        "spec": {"replicas": replicas, "serviceName": "db-svc", "template": template, **spec},
    }


@pytest.fixture
def store() -> Store:
    store = Store()
    store.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}})
    return store


def ipam(store: Store, enabled: bool) -> Ipam:
    ipam = Ipam(store, enable_stateful_set=enabled)
    ipam.install(nodes=1)
    ipam.add_pool("sts", ["198.18.0.200-198.18.0.201"])
    return ipam


def started(store: Store, ipam: Ipam, name: str) -> LabPod:
    """The set's pod `name` as the API server stores it (a fresh UID), given its address."""
    sts = store.find("StatefulSet", "db", "ns")
    assert sts is not None
    pod = LabPod(store.put(new_pod(sts, int(name.rsplit("-", 1)[1]))))
    assert ipam.allocate(pod, NODE)
    return pod


def gone(store: Store, ipam: Ipam, pod: LabPod) -> None:
    store.remove("Pod", pod.obj["metadata"]["name"], "ns")
    ipam.release(pod)


def records(store: Store) -> dict[str, Any]:
    return allocated_ips(store.find("SpiderIPPool", "sts") or {})


def test_a_pod_of_the_set_is_named_by_its_ordinal_and_owned_by_the_set(store: Store) -> None:
    sts = store.put(stateful_set())
    pod = new_pod(sts, 1)
    meta = pod["metadata"]
    assert (meta["name"], meta["namespace"]) == ("db-1", "ns")
    assert meta["labels"] == {
        "app": "db",
        "statefulset.kubernetes.io/pod-name": "db-1",
        "apps.kubernetes.io/pod-index": "1",
    }
    assert meta["annotations"] == sts["spec"]["template"]["metadata"]["annotations"]
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": "db",
            "uid": sts["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("db-1", "db-svc")


def test_the_controller_creates_the_missing_ordinals_and_nothing_in_a_namespace_gone(store: Store) -> None:
    created: list[str] = []
    controller = StatefulSets(store, lambda pod: created.append(store.put(pod)["metadata"]["name"]))
    sts = store.put(stateful_set(replicas=3))
    controller.sync("ns", "db")
    assert created == ["db-0", "db-1", "db-2"]
    deleted = store.find("Pod", "db-1", "ns")
    assert deleted is not None
    store.remove("Pod", "db-1", "ns")
    controller.pod_gone(deleted)
    assert created[3:] == ["db-1"]  # the same name, a new UID
    assert (store.find("Pod", "db-1", "ns") or {})["metadata"]["uid"] != deleted["metadata"]["uid"]
    assert sorted(controller.dependents(sts)) == ["db-0", "db-1", "db-2"]
    store.remove("Pod", "db-2", "ns")
    store.remove("Namespace", "ns", None)
    controller.sync("ns", "db")
    assert len(created) == 4


def test_the_set_wants_its_ordinals_only(store: Store) -> None:
    lab = ipam(store, enabled=True)
    store.put(stateful_set(replicas=2))
    assert [lab.wanted("ns", n) for n in ("db-0", "db-1", "db-2", "other-0", "db")] == [True, True, False, False, False]
    store.put(stateful_set(replicas=2, ordinals={"start": 5}))
    assert [lab.wanted("ns", n) for n in ("db-4", "db-5", "db-6", "db-7")] == [False, True, True, False]


def test_with_enable_statefulset_a_recreated_pod_gets_its_address_back_until_the_set_goes(store: Store) -> None:
    lab = ipam(store, enabled=True)
    store.put(stateful_set())
    first = started(store, lab, "db-0")
    gone(store, lab, first)  # kept: its record and endpoint stay
    assert records(store) == {first.ip: {"pod": "ns/db-0", "podUid": first.obj["metadata"]["uid"]}}
    other = started(store, lab, "db-1")  # a new pod does not get the kept address
    assert other.ip != first.ip
    again = started(store, lab, "db-0")
    uid = again.obj["metadata"]["uid"]
    assert again.ip == first.ip and uid != first.obj["metadata"]["uid"]
    assert records(store)[first.ip] == {"pod": "ns/db-0", "podUid": uid}  # moved to the new UID
    endpoint = store.find("SpiderEndpoint", "db-0", "ns") or {}
    assert (endpoint["status"]["current"]["uid"], endpoint["status"]["ownerControllerType"]) == (uid, "StatefulSet")
    store.remove("StatefulSet", "db", "ns")
    gone(store, lab, again)  # the set is gone: released
    lab.collect("ns")
    assert first.ip not in records(store) and store.find("SpiderEndpoint", "db-0", "ns") is None


def test_spiderpool_gc_reclaims_what_it_kept_for_a_set_that_is_gone(store: Store) -> None:
    lab = ipam(store, enabled=True)
    store.put(stateful_set())
    gone(store, lab, started(store, lab, "db-0"))
    store.remove("StatefulSet", "db", "ns")
    assert records(store)
    lab.collect("ns")
    assert records(store) == {} and store.find("SpiderEndpoint", "db-0", "ns") is None


def test_without_enable_statefulset_the_address_is_released_with_the_pod(store: Store) -> None:
    lab = ipam(store, enabled=False)
    assert (
        "enableStatefulSet: false"
        in (store.find("ConfigMap", "spiderpool-conf", "kube-system") or {})["data"]["conf.yml"]
    )
    store.put(stateful_set())
    gone(store, lab, started(store, lab, "db-0"))
    assert records(store) == {} and store.find("SpiderEndpoint", "db-0", "ns") is None
