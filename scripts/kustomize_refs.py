#!/usr/bin/env python3
"""Checks that the objects of one kustomize render refer only to each other.

    kustomize_refs.py RENDER.yaml [--operator KIND/NAME ...]

Every reference must resolve inside the render, or be one of the --operator objects (those the
operator creates before applying; docs/deployment.md#objects-you-create):

* Secrets and ConfigMaps named by a pod template's envFrom, env[].valueFrom, volumes (projected
  ones included) and imagePullSecrets, and the keys named by env[].valueFrom when the object is
  in the render;
* the pod template's serviceAccountName;
* named ports of probes, which a container of the same pod must declare;
* the selectors of Services, PodDisruptionBudgets, NetworkPolicies (and their podSelector
  peers) and workloads, which must match the labels of a pod template in the render, and a
  Service's targetPort, which a container of a matched pod must declare;
* in-cluster addresses: a URL whose host is a bare Service name (`redis://registry-gateway-redis:6379/0`,
  `http://docker-registry:5000`) in a container's env, args or command, or in a Secret's or
  ConfigMap's values, names a Service that must be in the render with that port, or be the
  operator's.

An --operator object that the render holds, or that nothing refers to, is an error too: the
list stays exact. Prints one line per finding and exits 1 when there is any.
"""

import argparse
import base64
import re
import sys

import yaml

# scheme://[userinfo@]host[:port] where host is one DNS label: a Service of the same namespace.
IN_CLUSTER_URL = re.compile(
    r"\b[a-z][a-z0-9+.-]*://(?:[^@/\s]*@)?([a-z0-9]([a-z0-9-]*[a-z0-9])?)(?::(\d+))?(?=[/\s\"']|$)"
)

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}


def pod_template(obj):
    """(labels, pod spec) of a workload, or None."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return (obj.get("metadata") or {}).get("labels") or {}, spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    if kind in WORKLOADS:
        template = spec.get("template") or {}
        return (template.get("metadata") or {}).get("labels") or {}, template.get("spec") or {}
    return None


def matches(selector, labels):
    """Whether a plain label selector (a map, or matchLabels) selects these labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def label_selector(selector, where, problems):
    """The matchLabels of a LabelSelector; matchExpressions are not understood here."""
    selector = selector or {}
    if selector.get("matchExpressions"):
        problems.append(f"{where}: matchExpressions are not checked; use matchLabels")
    return selector.get("matchLabels") or {}


def containers(spec):
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(field) or []


def container_ports(spec):
    """Named and numbered ports the pod's containers declare."""
    names, numbers = set(), set()
    for container in containers(spec):
        for port in container.get("ports") or []:
            if port.get("name"):
                names.add(port["name"])
            numbers.add(port.get("containerPort"))
    return names, numbers


class Render:
    def __init__(self, documents, operator):
        self.objects = {}
        for obj in documents:
            if obj:
                key = (obj.get("kind"), (obj.get("metadata") or {}).get("name"))
                self.objects[key] = obj
        self.operator = set(operator)
        self.used_operator = set()
        self.problems = []
        self.resolved = 0
        self.pods = [
            (f"{kind}/{name}", *template)
            for (kind, name), obj in self.objects.items()
            if (template := pod_template(obj)) is not None
        ]

    def refer(self, where, kind, name, key=None, optional=False):
        """One reference from `where` to the object kind/name (and its key)."""
        if not name:
            self.problems.append(f"{where}: a {kind} reference without a name")
            return
        target = (kind, name)
        if target in self.objects:
            self.resolved += 1
            if key is not None:
                obj = self.objects[target]
                keys = set()
                for field in ("data", "stringData", "binaryData"):
                    keys |= set((obj.get(field) or {}).keys())
                if key not in keys:
                    self.problems.append(f"{where}: {kind}/{name} has no key {key!r}")
        elif f"{kind}/{name}" in self.operator:
            self.used_operator.add(f"{kind}/{name}")
        else:
            note = " (optional, but still neither rendered nor the operator's)" if optional else ""
            self.problems.append(
                f"{where}: refers to {kind}/{name}, which the render does not hold and the "
                f"operator's list does not name{note}"
            )

    def addresses(self, where, text):
        """In-cluster URLs in `text` name Services of the render (with that port), or the
        operator's."""
        if not isinstance(text, str):
            return
        for match in IN_CLUSTER_URL.finditer(text):
            host, port = match.group(1), match.group(3)
            if host == "localhost":
                continue
            service = self.objects.get(("Service", host))
            if service is None:
                self.refer(f"{where} ({match.group(0)})", "Service", host)
                continue
            self.resolved += 1
            ports = {p.get("port") for p in (service.get("spec") or {}).get("ports") or []}
            if port is not None and int(port) not in ports:
                self.problems.append(f"{where}: Service/{host} has no port {port}")

    def selected(self, where, selector, port=None):
        """The selector must pick a pod template; `port` (a targetPort) must be one of its."""
        if not selector:
            self.problems.append(f"{where}: no selector")
            return
        chosen = [(name, spec) for name, labels, spec in self.pods if matches(selector, labels)]
        if not chosen:
            self.problems.append(
                f"{where}: selector {selector} matches no pod template in the render"
            )
            return
        self.resolved += 1
        if port is None:
            return
        for name, spec in chosen:
            names, numbers = container_ports(spec)
            if port not in (names if isinstance(port, str) else numbers):
                self.problems.append(f"{where}: port {port!r} is not declared by {name}")

    def check_pod(self, where, spec):
        account = spec.get("serviceAccountName") or spec.get("serviceAccount")
        if account and account != "default":
            self.refer(where, "ServiceAccount", account)
        for secret in spec.get("imagePullSecrets") or []:
            self.refer(where, "Secret", secret.get("name"))
        names, _ = container_ports(spec)
        for container in containers(spec):
            at = f"{where} container {container.get('name')}"
            for source in container.get("envFrom") or []:
                for field, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                    if field in source:
                        ref = source[field] or {}
                        self.refer(at, kind, ref.get("name"), optional=ref.get("optional"))
            for arg in (container.get("command") or []) + (container.get("args") or []):
                self.addresses(at, arg)
            for env in container.get("env") or []:
                self.addresses(f"{at} env {env.get('name')}", env.get("value"))
                value_from = env.get("valueFrom") or {}
                for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                    if field in value_from:
                        ref = value_from[field] or {}
                        self.refer(
                            f"{at} env {env.get('name')}",
                            kind,
                            ref.get("name"),
                            key=ref.get("key"),
                            optional=ref.get("optional"),
                        )
            for probe_field in ("livenessProbe", "readinessProbe", "startupProbe"):
                probe = container.get(probe_field) or {}
                for handler in ("httpGet", "tcpSocket", "grpc"):
                    port = (probe.get(handler) or {}).get("port")
                    if isinstance(port, str) and port not in names:
                        self.problems.append(f"{at} {probe_field}: port {port!r} is not declared")
        for volume in spec.get("volumes") or []:
            at = f"{where} volume {volume.get('name')}"
            if "secret" in volume:
                ref = volume["secret"] or {}
                self.refer(at, "Secret", ref.get("secretName"), optional=ref.get("optional"))
            if "configMap" in volume:
                ref = volume["configMap"] or {}
                self.refer(at, "ConfigMap", ref.get("name"), optional=ref.get("optional"))
            for source in (volume.get("projected") or {}).get("sources") or []:
                for field, kind in (("secret", "Secret"), ("configMap", "ConfigMap")):
                    if field in source:
                        ref = source[field] or {}
                        self.refer(at, kind, ref.get("name"), optional=ref.get("optional"))

    def check(self):
        for (kind, name), obj in self.objects.items():
            where = f"{kind}/{name}"
            spec = obj.get("spec") or {}
            template = pod_template(obj)
            if template is not None:
                labels, pod_spec = template
                self.check_pod(where, pod_spec)
                if kind != "Pod":
                    if kind == "CronJob":
                        continue
                    selector = label_selector(spec.get("selector"), where, self.problems)
                    if selector and not matches(selector, labels):
                        self.problems.append(
                            f"{where}: selector {selector} does not match its pod template"
                        )
            elif kind in ("Secret", "ConfigMap"):
                for field in ("data", "stringData", "binaryData"):
                    for key, value in (obj.get(field) or {}).items():
                        if kind == "Secret" and field == "data" or field == "binaryData":
                            try:
                                value = base64.b64decode(value).decode("utf-8")
                            except (ValueError, UnicodeDecodeError):
                                continue
                        self.addresses(f"{where} key {key}", value)
            elif kind == "Service":
                if spec.get("type") == "ExternalName":
                    continue
                for port in spec.get("ports") or []:
                    target = port.get("targetPort", port.get("port"))
                    self.selected(f"{where} port {port.get('name')}", spec.get("selector"), target)
            elif kind == "PodDisruptionBudget":
                self.selected(where, label_selector(spec.get("selector"), where, self.problems))
            elif kind == "NetworkPolicy":
                self.selected(where, label_selector(spec.get("podSelector"), where, self.problems))
                for direction in ("ingress", "egress"):
                    for rule in spec.get(direction) or []:
                        for peer in rule.get("from" if direction == "ingress" else "to") or []:
                            if "podSelector" in peer and "namespaceSelector" not in peer:
                                at = f"{where} {direction} peer"
                                self.selected(
                                    at, label_selector(peer["podSelector"], at, self.problems)
                                )
        for listed in sorted(self.operator):
            kind, _, name = listed.partition("/")
            if (kind, name) in self.objects:
                self.problems.append(f"{listed} is listed as the operator's but the render holds it")
            elif listed not in self.used_operator:
                self.problems.append(f"{listed} is listed as the operator's but nothing refers to it")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("render")
    parser.add_argument("--operator", action="append", default=[], metavar="KIND/NAME")
    args = parser.parse_args()
    with open(args.render, encoding="utf-8") as f:
        render = Render(list(yaml.safe_load_all(f)), args.operator)
    render.check()
    for problem in render.problems:
        print(f"  {problem}", file=sys.stderr)
    if render.problems:
        return 1
    operator = ", ".join(sorted(render.operator)) or "none"
    print(
        f"  {len(render.objects)} objects, {render.resolved} references resolved in the render; "
        f"the operator's: {operator}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
