"""A strict check of Kubernetes YAML documents against the API's schema, as the official Python
client (Debian's python3-kubernetes) carries it: each generated model class (V1Pod,
V1Container, ...) has `openapi_types` (attribute -> type) and `attribute_map` (attribute -> the
key in the YAML) taken from the Kubernetes OpenAPI spec, and its constructor, with client-side
validation on, refuses a missing required field.

check(doc) walks a document from its kind's model down: every key must be a field of the model
at that place, every value of the field's type (str, int, bool, list[T], dict(K, V), a nested
model; 'object' in the Pod and Deployment schemas is IntOrString: an int or a str), nothing
null, every model built (so its required fields are there), and the few enumerated fields the
schema only describes in words take one of their values. A Deployment's Pods must restart
Always, and its selector must match its template's labels (the API server's own checks).
Any violation raises SchemaError naming the path, e.g. spec.containers[0].ports[0].containerPort.
"""
import re

from kubernetes import client

KINDS = {("v1", "Pod"): "V1Pod", ("apps/v1", "Deployment"): "V1Deployment"}

# (model, attribute) -> the values the API accepts (its descriptions list them)
ENUMS = {
    ("V1PodSpec", "restart_policy"): {"Always", "OnFailure", "Never"},
    ("V1Container", "image_pull_policy"): {"Always", "IfNotPresent", "Never"},
    ("V1ContainerPort", "protocol"): {"TCP", "UDP", "SCTP"},
    ("V1SeccompProfile", "type"): {"RuntimeDefault", "Unconfined", "Localhost"},
    ("V1DeploymentStrategy", "type"): {"Recreate", "RollingUpdate"},
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class SchemaError(AssertionError):
    pass


def _config():
    c = client.Configuration()
    c.client_side_validation = True
    return c


def _value(t, v, path):
    """v as type t (an openapi_types string), checked; returns what a model takes."""
    if v is None:
        raise SchemaError(f"{path}: null where {t} is expected")
    m = re.fullmatch(r"list\[(.+)\]", t)
    if m:
        if not isinstance(v, list):
            raise SchemaError(f"{path}: {type(v).__name__} where a list of {m[1]} is expected")
        return [_value(m[1], x, f"{path}[{i}]") for i, x in enumerate(v)]
    m = re.fullmatch(r"dict\(([^,]+), (.+)\)", t)
    if m:
        if not isinstance(v, dict):
            raise SchemaError(f"{path}: {type(v).__name__} where a map is expected")
        return {_value(m[1], k, f"{path} key"): _value(m[2], x, f"{path}.{k}")
                for k, x in v.items()}
    if t == "str" or t in ("datetime", "date"):
        ok = isinstance(v, str)
    elif t == "int":
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif t == "bool":
        ok = isinstance(v, bool)
    elif t == "float":
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    elif t == "object":
        ok = isinstance(v, (int, str)) and not isinstance(v, bool)   # IntOrString
    elif hasattr(client, t):
        return _model(t, v, path)
    else:
        raise SchemaError(f"{path}: the checker does not know type {t}")
    if not ok:
        raise SchemaError(f"{path}: {type(v).__name__} {v!r} where {t} is expected")
    return v


def _model(name, v, path):
    cls = getattr(client, name)
    if not isinstance(v, dict):
        raise SchemaError(f"{path or name}: {type(v).__name__} where a {name} is expected")
    by_key = {key: attr for attr, key in cls.attribute_map.items()}
    args = {}
    for key, x in v.items():
        where = f"{path}.{key}" if path else key
        if key not in by_key:
            raise SchemaError(f"{where}: not a field of {name}")
        attr = by_key[key]
        args[attr] = _value(cls.openapi_types[attr], x, where)
        allowed = ENUMS.get((name, attr))
        if allowed and x not in allowed:
            raise SchemaError(f"{where}: {x!r} is not one of {sorted(allowed)}")
    try:
        return cls(local_vars_configuration=_config(), **args)
    except ValueError as e:   # a required field missing
        raise SchemaError(f"{path or name}: {e}") from None


def check(doc):
    """Raises SchemaError unless doc is a Pod or Deployment the API would take."""
    if not isinstance(doc, dict):
        raise SchemaError(f"a document is a map, not {type(doc).__name__}")
    kind = (doc.get("apiVersion"), doc.get("kind"))
    if kind not in KINDS:
        raise SchemaError(f"apiVersion/kind {kind}: not a Pod (v1) or Deployment (apps/v1)")
    _model(KINDS[kind], doc, "")
    name = (doc.get("metadata") or {}).get("name")
    if not name or len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        raise SchemaError(f"metadata.name: {name!r} is not a DNS subdomain")
    if kind[1] == "Pod":
        pod, where = doc.get("spec"), "spec"
    else:
        spec = doc["spec"]
        tmpl = spec["template"]
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        sel = spec["selector"].get("matchLabels") or {}
        if not sel or any(labels.get(k) != x for k, x in sel.items()):
            raise SchemaError("spec.selector.matchLabels: does not match the template's labels")
        pod, where = tmpl.get("spec"), "spec.template.spec"
        if pod and pod.get("restartPolicy", "Always") != "Always":
            raise SchemaError(f"{where}.restartPolicy: a Deployment's Pods restart Always")
    if not pod:
        raise SchemaError(f"{where}: missing")
    for i, c in enumerate(pod["containers"]):
        if not DNS_LABEL.match(c["name"]):
            raise SchemaError(f"{where}.containers[{i}].name: {c['name']!r} is not a DNS label")


def check_all(docs):
    docs = [d for d in docs if d is not None]
    assert docs, "no document"
    for d in docs:
        check(d)
    return docs
