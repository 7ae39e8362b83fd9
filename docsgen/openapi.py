"""The HTTP API reference in Markdown, from the app's own OpenAPI schema (what ``/docs`` shows).

Each operation gets a heading, its description, its parameters, its request body's content types
and its responses; each schema a table of its fields. Nothing is written twice: change a route,
a response model or a field's description, and the page follows at the next build.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

__all__ = ["api_schema", "render_api"]

METHODS = ("get", "post", "put", "patch", "delete")
REF = "#/components/schemas/"
PARAMETERS = [
    "| parameter | in | type | required | description |",
    "| --- | --- | --- | --- | --- |",
]


def api_schema() -> dict[str, Any]:
    """The OpenAPI schema of an app with default settings (and a throwaway speaker store)."""
    from service.app import create_app
    from service.settings import Settings

    with tempfile.TemporaryDirectory() as store:
        return create_app(Settings(data_dir=Path(store))).openapi()


def render_api(schema: dict[str, Any]) -> str:
    """The operations, grouped by tag in the order they first appear, then the schemas."""
    by_tag: dict[str, list[str]] = {}
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                tag = (item[method].get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append(_operation(method, path, item[method]))
    parts = [f"## {tag.capitalize()}\n\n" + "\n\n".join(ops) for tag, ops in by_tag.items()]
    schemas = schema.get("components", {}).get("schemas", {})
    parts.append("## Schemas\n\n" + "\n\n".join(_schema(n, s) for n, s in schemas.items()))
    return "\n\n".join(parts) + "\n"


def _operation(method: str, path: str, op: dict[str, Any]) -> str:
    lines = [f"### `{method.upper()} {path}`", "", f"**{op.get('summary', '')}**"]
    if op.get("description"):
        lines += ["", op["description"]]
    if op.get("parameters"):
        lines += ["", *PARAMETERS]
        lines += [
            f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | "
            f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description', ''))} |"
            for p in op["parameters"]
        ]
    if "requestBody" in op:
        lines += ["", "Request body: " + _body(op["requestBody"])]
    lines += ["", "| status | meaning | body |", "| --- | --- | --- |"]
    for status, response in op.get("responses", {}).items():
        content = response.get("content", {}).get("application/json", {})
        body = _type(content["schema"]) if "schema" in content else ""
        lines.append(f"| {status} | {_cell(response.get('description', ''))} | {body} |")
    return "\n".join(lines)


def _body(body: dict[str, Any]) -> str:
    kinds = []
    for media, content in body.get("content", {}).items():
        schema = content.get("schema", {})
        fields = schema.get("properties")
        shown = ", ".join(f"`{name}`" for name in fields) if fields else _type(schema)
        kinds.append(f"`{media}` ({shown})")
    return " or ".join(kinds) + ("" if body.get("required") else "; optional")


def _schema(name: str, schema: dict[str, Any]) -> str:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [_cell(schema["description"]), ""]
    required = set(schema.get("required", []))
    properties = schema.get("properties", {})
    if not properties:
        return "\n".join([*lines, _type(schema)])
    lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    for field, spec in properties.items():
        lines.append(
            f"| `{field}` | {_type(spec)} | {'yes' if field in required else 'no'} | "
            f"{_cell(spec.get('description', ''))} |"
        )
    return "\n".join(lines)


def _type(spec: dict[str, Any]) -> str:
    """A field's type in words, a referenced schema as a link to its table."""
    if "$ref" in spec:
        name = spec["$ref"].removeprefix(REF)
        return f"[{name}](#{name.lower()})"
    if "anyOf" in spec:
        return " or ".join(_type(s) for s in spec["anyOf"])
    if "enum" in spec:
        return " \\| ".join(f"`{v}`" for v in spec["enum"])
    kind = spec.get("type", "any")
    if kind == "array":
        inner = spec.get("items") or {"type": "any"}
        return f"array of {_type(inner)}"
    if kind == "object" and isinstance(spec.get("additionalProperties"), dict):
        return f"object of {_type(spec['additionalProperties'])}"
    if spec.get("format") == "binary":
        return "file"
    return str(kind)


def _cell(text: str) -> str:
    """Text for a table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")
