"""The API server's audit policy, as k8s.io/apiserver reads it: which level a request is logged at, with which stages
left out (pkg/audit/policy/checker.go: NewPolicyRuleEvaluator's union of the policy's and the rule's omitStages,
EvaluatePolicyRule's first matching rule, ruleMatches, ruleMatchesResource, ruleMatchesNonResource, pathMatches;
no rule matching: level None), and what it refuses to load (pkg/apis/audit/validation/validation.go, ValidatePolicy).
Passes checker_test.go's cases (tests/fixtures/upstream/audit-policy-checker-test.json)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.upstream.generic_device_plugin import is_dns1123_subdomain

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")


@dataclass(frozen=True)
class Request:
    """authorizer.Attributes as the checker reads them; `user` None for an unauthenticated request."""

    user: str | None
    groups: tuple[str, ...] = ()
    verb: str = "get"
    namespace: str = ""  # "" for a cluster-scoped resource
    group: str = ""  # "" is the core API group
    resource: str = ""
    subresource: str = ""
    name: str = ""
    resource_request: bool = True
    path: str = ""


def evaluate(policy: dict[str, Any], request: Request) -> tuple[str, set[str]]:
    """(level, omitted stages) of the first rule that matches; (None, the policy's) when none does."""
    for rule in policy.get("rules", []):
        if _rule_matches(rule, request):
            return rule["level"], {*policy.get("omitStages", []), *rule.get("omitStages", [])}
    return "None", set(policy.get("omitStages", []))


def _rule_matches(rule: dict[str, Any], r: Request) -> bool:
    if rule.get("users") and (r.user is None or r.user not in rule["users"]):
        return False
    if rule.get("userGroups") and (r.user is None or not set(r.groups) & set(rule["userGroups"])):
        return False
    if rule.get("verbs") and r.verb not in rule["verbs"]:
        return False
    if rule.get("namespaces") or rule.get("resources"):
        return _matches_resource(rule, r)
    if rule.get("nonResourceURLs"):
        return not r.resource_request and any(_path_matches(r.path, spec) for spec in rule["nonResourceURLs"])
    return True


def _path_matches(path: str, spec: str) -> bool:
    return spec in ("*", path) or (spec.endswith("*") and path.startswith(spec.rstrip("*")))


def _matches_resource(rule: dict[str, Any], r: Request) -> bool:
    if not r.resource_request:
        return False
    if rule.get("namespaces") and r.namespace not in rule["namespaces"]:
        return False
    if not rule.get("resources"):
        return True
    combined = f"{r.resource}/{r.subresource}" if r.subresource else r.resource
    for gr in rule["resources"]:
        if gr.get("group", "") != r.group:
            continue
        if not gr.get("resources"):
            return True
        for res in gr["resources"]:
            if gr.get("resourceNames") and r.name not in gr["resourceNames"]:
                continue
            if res in (combined, "*"):
                return True
            if r.subresource and res.startswith("*/") and r.subresource == res.removeprefix("*/"):
                return True
            if res.endswith("/*") and r.resource == res.removesuffix("/*"):
                return True
    return False


def validate(policy: dict[str, Any]) -> list[str]:
    """ValidatePolicy's errors, each as `field: message`."""
    errors = []
    for i, rule in enumerate(policy.get("rules", [])):
        at = f"rules[{i}]"
        level = rule.get("level", "")
        if level == "":
            errors.append(f"{at}.level: Required value")
        elif level not in LEVELS:
            errors.append(f"{at}.level: Unsupported value: {level!r}")
        for j, url in enumerate(rule.get("nonResourceURLs", [])):
            if url == "*":
                continue
            if not url.startswith("/"):
                errors.append(f"{at}.nonResourceURLs[{j}]: non-resource URL rules must begin with a '/' character")
            if url and "*" in url[:-1]:
                errors.append(
                    f"{at}.nonResourceURLs[{j}]: non-resource URL wildcards '*' must be the final character of the rule"
                )
        for gr in rule.get("resources", []):
            if gr.get("group") and not is_dns1123_subdomain(gr["group"]):
                errors.append(f"{at}.resources.group: {gr['group']!r} is not a DNS subdomain")
            if gr.get("resourceNames") and not gr.get("resources"):
                errors.append(f"{at}.resources.resourceNames: using resourceNames requires at least one resource")
        for j, stage in enumerate(rule.get("omitStages", [])):
            if stage not in STAGES:
                errors.append(f"{at}.omitStages[{j}]: allowed stages are {','.join(STAGES)}")
        if rule.get("nonResourceURLs") and (rule.get("resources") or rule.get("namespaces")):
            errors.append(f"{at}.nonResourceURLs: rules cannot apply to both regular resources and non-resource URLs")
    return errors
