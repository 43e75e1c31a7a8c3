"""The API server's EncryptionConfiguration as k8s.io/apiserver loads it (--encryption-provider-config): the v1 file's
defaults (pkg/apis/apiserver/v1/defaults.go, SetDefaults_KMSConfiguration) and every rule of
ValidateEncryptionConfiguration (pkg/apis/apiserver/validation/validation_encryption.go), with its messages; passes
that file's tests (tests/fixtures/upstream/encryption-config-validation-test.json). Errors are (field path, message)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import urlsplit

AES_KEY_SIZES = (16, 24, 32)  # crypto/aes NewCipher
SECRETBOX_KEY_SIZES = (32,)  # x/crypto/nacl/secretbox
PROVIDERS = ("kms", "aesgcm", "aescbc", "secretbox", "identity")
Error = tuple[str, str]
# validation_encryption.go's messages
NO_PROVIDER = "provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity"
MORE_THAN_ONE = "more than one provider specified in a single element, should split into different list elements"
STAR_RESOURCE = "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources"
KEY_LENGTH = "secret is not of the expected length, got {}, expected one of [{}]"


def defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A decoded v1 file: every kms provider gets timeout 3 s, apiVersion v1 and, for v1, cachesize 1000."""
    config = json.loads(json.dumps(config))
    for resource in config.get("resources", []):
        for provider in resource.get("providers", []):
            if "kms" in provider:
                kms = provider["kms"]
                kms.setdefault("timeout", 3)
                kms["apiVersion"] = kms.get("apiVersion") or "v1"
                if kms["apiVersion"] == "v1":
                    kms.setdefault("cachesize", 1000)
    return config


def validate(config: dict[str, Any] | None, reload: bool = False) -> list[Error]:
    """ValidateEncryptionConfiguration (on the internal types, i.e. after `defaults`)."""
    if config is None:
        return [("resources", "EncryptionConfiguration can't be nil")]
    if not config.get("resources"):
        return [("resources", "at least one resources is required")]
    errors: list[Error] = []
    kms_names: set[str] = set()
    for i, conf in enumerate(config["resources"]):
        r, p = f"resources[{i}].resources", f"resources[{i}].providers"
        if not conf.get("resources"):
            errors.append((r, f"at least one {r} is required"))
        errors += _overlap(conf.get("resources", []), r) + _names(conf.get("resources", []), r)
        if not conf.get("providers"):
            errors.append((p, f"at least one {p} is required"))
        for j, provider in enumerate(conf.get("providers", [])):
            path = f"{p}[{j}]"
            found = [name for name in PROVIDERS if provider.get(name) is not None]
            if not found:
                errors.append((path, NO_PROVIDER))
            elif len(found) > 1:
                errors.append((path, MORE_THAN_ONE))
            if provider.get("kms") is not None:
                errors += [(f"{path}.kms.{f}", m) for f, m in validate_kms(provider["kms"], kms_names, reload)]
                kms_names.add(provider["kms"].get("name", ""))
            elif found and found[0] in ("aesgcm", "aescbc", "secretbox"):
                sizes = SECRETBOX_KEY_SIZES if found[0] == "secretbox" else AES_KEY_SIZES
                errors += validate_keys(provider[found[0]].get("keys", []), f"{path}.{found[0]}.keys", sizes)
    return errors


def _parse_group_resource(value: str) -> tuple[str, str]:
    """apimachinery schema.ParseGroupResource: (group, resource), split at the first dot."""
    resource, dot, group = value.partition(".")
    return (group, resource) if dot else ("", value)


def _overlap(resources: list[str], path: str) -> list[Error]:
    if len(resources) < 2:
        return []
    parsed = [_parse_group_resource(r) for r in resources]
    duplicate = overlap = False
    for i, r1 in enumerate(parsed):
        for j, r2 in enumerate(parsed):
            if i == j:
                continue
            if r1 == r2 and not duplicate:
                duplicate = True
                continue
            if overlap:
                continue
            if r1 == ("*", "*"):
                overlap = True
                continue
            if r1[0] != r2[0]:
                continue
            if "*" in (r1[1], r2[1]):
                overlap = True
    errors = []
    if duplicate:
        errors.append((path, "the same resource cannot be specified multiple times"))
    if overlap:
        errors.append(
            (
                path,
                "using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed "
                "as they will be masked",
            )
        )
    return errors


def _names(resources: list[str], path: str) -> list[Error]:
    errors = []
    for j, res in enumerate(resources):
        at = f"{path}[{j}]"
        group, resource = _parse_group_resource(res)
        if res.lower() != res:
            errors.append((at, "resource name should not contain capital letters"))
        elif res == "*":
            errors.append((at, STAR_RESOURCE))
        elif res in ("apiserveripinfo", "serviceipallocations", "servicenodeportallocations"):
            errors.append((at, "resources which do not have REST API/s cannot be encrypted"))
        elif group == "events.k8s.io":
            errors.append(
                (
                    at,
                    "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. "
                    "Use 'events' instead in the config file",
                )
            )
        elif group == "extensions":
            errors.append((at, "'extensions' group has been removed and cannot be used for encryption"))
        elif group == "*" and resource != "*":
            errors.append((at, "encrypting the same resource across groups is not supported"))
    return errors


def validate_keys(keys: list[dict[str, str]], path: str, sizes: tuple[int, ...]) -> list[Error]:
    if not keys:
        return [(path, "at least one keys is required")]
    return [(f"{path}[{i}].{f}", m) for i, key in enumerate(keys) for f, m in validate_key(key, sizes)]


def validate_key(key: dict[str, str], sizes: tuple[int, ...]) -> list[Error]:
    errors = []
    if not key.get("name"):
        errors.append(("name", "name is a mandatory field for a key"))
    if not key.get("secret"):
        return [*errors, ("secret", "secret is a mandatory field for a key")]
    try:
        secret = base64.b64decode(key["secret"], validate=True)  # encoding/base64 StdEncoding: padded, no junk
    except binascii.Error:
        return [*errors, ("secret", "secrets must be base64 encoded")]
    if len(secret) not in sizes:
        errors.append(("secret", KEY_LENGTH.format(len(secret), " ".join(map(str, sizes)))))
    return errors


def validate_kms(kms: dict[str, Any], names: set[str], reload: bool) -> list[Error]:
    """validateKMSConfiguration: name, timeout, endpoint, cachesize, apiVersion (errors as (field, message))."""
    return [
        *[("name", m) for m in kms_name(kms, names, reload)],
        *[("timeout", m) for m in kms_timeout(kms)],
        *[("endpoint", m) for m in kms_endpoint(kms)],
        *[("cachesize", m) for m in kms_cache_size(kms)],
        *[("apiVersion", m) for m in kms_api_version(kms)],
    ]


def kms_name(kms: dict[str, Any], names: set[str], reload: bool) -> list[str]:
    name, version, errors = kms.get("name", ""), kms.get("apiVersion", ""), []
    if not name:
        errors.append("name is a mandatory field for a provider")
    if version != "v1" and ":" in name:
        errors.append(f"invalid KMS provider name {name}, must not contain ':'")
    if (reload or version != "v1") and name in names:
        errors.append(f"duplicate KMS provider name {name}, names must be unique")
    return errors


def kms_timeout(kms: dict[str, Any]) -> list[str]:
    return ["timeout should be a positive value"] if kms.get("timeout", 0) <= 0 else []


def kms_endpoint(kms: dict[str, Any]) -> list[str]:
    endpoint = kms.get("endpoint", "")
    if not endpoint:
        return ["endpoint is a mandatory field for a kms"]
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in endpoint):  # net/url's parse: stringContainsCTLByte
        return [
            f"invalid endpoint for kms provider, error: parse {json.dumps(endpoint)}: "
            "net/url: invalid control character in URL"
        ]
    scheme = urlsplit(endpoint).scheme
    return [] if scheme == "unix" else [f'unsupported scheme "{scheme}" for KMS provider, only unix is supported']


def kms_cache_size(kms: dict[str, Any]) -> list[str]:
    version, size = kms.get("apiVersion", ""), kms.get("cachesize")
    errors = []
    if version != "v1" and size is not None:
        errors.append("cachesize is not supported in v2")
    if version == "v1" and size == 0:
        errors.append("cachesize should be a positive value, or negative to disable")
    return errors


def kms_api_version(kms: dict[str, Any]) -> list[str]:
    if kms.get("apiVersion", "") in ("v1", "v2"):
        return []
    return ["unsupported apiVersion apiVersion for KMS provider, only v1 and v2 are supported"]
