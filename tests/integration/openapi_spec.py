"""docs/openapi.yaml for the tests: the routes it describes, and a check that
an answer of the running api is one the document allows (a documented
status, and a body that validates against that status's schema)."""
import pathlib
import re

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "docs" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "options", "head")


def load():
    return yaml.safe_load(SPEC_PATH.read_text())


def routes(spec):
    """{("GET", "/v1/streams/{}"), ...}: paths with their parameters as {}, as
    `sluice-api --routes` prints them."""
    out = set()
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                out.add((method.upper(), re.sub(r"\{[^}/]+\}", "{}", path)))
    return out


def _deref(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


class Checker:
    def __init__(self):
        self.spec = load()
        self.resolver = jsonschema.RefResolver.from_schema(self.spec)
        self.seen = set()   # (METHOD, path template, status)

    def check(self, response, method, template):
        """Fails unless <response> (requests) is an answer the document gives
        to <method> <template> (its path as in the document)."""
        op = self.spec["paths"][template][method.lower()]
        status = str(response.status_code)
        assert status in op["responses"], (
            f"{method} {template} answered {status}, which docs/openapi.yaml does not list: "
            f"{response.text[:300]}")
        self.seen.add((method.upper(), template, status))
        resp = _deref(self.spec, op["responses"][status])
        content = resp.get("content")
        if content is None:
            assert response.content == b"", f"{method} {template} {status} has a body"
            return
        assert response.headers.get("Content-Type", "").startswith("application/json")
        schema = content["application/json"]["schema"]
        validator = jsonschema.Draft202012Validator(schema, resolver=self.resolver)
        errors = sorted(validator.iter_errors(response.json()), key=lambda e: e.path)
        assert not errors, (f"{method} {template} {status}: the body breaks the document: "
                            + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5]))
        for name, header in resp.get("headers", {}).items():
            if _deref(self.spec, header).get("required"):
                assert name in response.headers, f"{method} {template} {status}: no {name}"
