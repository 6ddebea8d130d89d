"""Writes ``services/common/records.py``: a frozen dataclass per Avro record of ``schemas/``.

The types are derived from the schemas, never written by hand: ``python -m
services.common.records_codegen`` regenerates the module after a schema changes, and a test
fails while the committed module differs from what the schemas give. Only the latest version of
each schema has a type; older versions are resolved to it by the Avro reader (the serde), so a
record written with any released version decodes into the same type.

What each Avro type becomes: a record a frozen, keyword-only dataclass with ``from_avro`` and
``to_avro``; an enum a ``StrEnum`` (its members equal their symbols, so they are written as
they are); ``["null", X]`` ``X | None``; an array a tuple (the record stays immutable and
hashable); a map a dict; ``timestamp-millis`` a ``datetime`` and ``date`` a ``date``, as
fastavro reads them.

``from_avro`` is on every consumer's hot path, so it is generated straight-line: no
introspection, an enum symbol found in a dict, and the instance's attributes set in one step
rather than through the frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field,
about three times slower).
"""

from __future__ import annotations

import json
import keyword
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common.paths import SCHEMAS_DIR
from services.common.schemas import schema_path

TARGET = Path(__file__).with_name("records.py")

_PRIMITIVES = {
    "null": "None",
    "boolean": "bool",
    "int": "int",
    "long": "int",
    "float": "float",
    "double": "float",
    "bytes": "bytes",
    "string": "str",
}
_LOGICAL = {
    ("long", "timestamp-millis"): "dt.datetime",
    ("long", "timestamp-micros"): "dt.datetime",
    ("int", "date"): "dt.date",
}


_METHODS = frozenset({"SCHEMA", "from_avro", "adopt_avro", "to_avro"})


class UnsupportedSchema(ValueError):
    """A schema uses an Avro construct the generator has no Python type for."""


@dataclass
class _Named:
    fullname: str
    schema: dict[str, Any]
    dependencies: list[str] = field(default_factory=list)


def _short(fullname: str) -> str:
    return fullname.rsplit(".", 1)[-1]


def _collect(schema: Any, namespace: str, found: dict[str, _Named], order: list[str]) -> None:
    """Every named type under ``schema``, dependencies before the types that use them."""
    if isinstance(schema, list):
        for branch in schema:
            _collect(branch, namespace, found, order)
        return
    if not isinstance(schema, dict):
        return
    kind = schema["type"]
    if kind in ("record", "enum"):
        name = schema["name"]
        space = schema.get("namespace", namespace)
        fullname = name if "." in name else f"{space}.{name}"
        if fullname in found:
            if found[fullname].schema != schema:
                raise UnsupportedSchema(f"{fullname} is defined twice, differently")
            return
        found[fullname] = _Named(fullname, schema)
        if kind == "record":
            for item in schema["fields"]:
                _collect(item["type"], space, found, order)
        order.append(fullname)
    elif kind == "array":
        _collect(schema["items"], namespace, found, order)
    elif kind == "map":
        _collect(schema["values"], namespace, found, order)
    elif isinstance(kind, (dict, list)):
        _collect(kind, namespace, found, order)


class _Module:
    """The generated source, built type by type."""

    def __init__(self, named: dict[str, _Named]) -> None:
        self.named = named
        self.defaults: list[str] = []

    # --- types -------------------------------------------------------------------------------

    def _fullname(self, name: str, namespace: str) -> str:
        return name if "." in name else f"{namespace}.{name}"

    def annotation(self, schema: Any, namespace: str) -> str:
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return _PRIMITIVES[schema]
            return _short(self._fullname(schema, namespace))
        if isinstance(schema, list):
            return f"{self.annotation(self._nullable(schema), namespace)} | None"
        kind = schema["type"]
        if isinstance(kind, (dict, list)):
            return self.annotation(kind, namespace)
        logical = _LOGICAL.get((kind, schema.get("logicalType", "")))
        if logical:
            return logical
        if kind in ("record", "enum"):
            return _short(self._fullname(schema["name"], schema.get("namespace", namespace)))
        if kind == "array":
            return f"tuple[{self.annotation(schema['items'], namespace)}, ...]"
        if kind == "map":
            return f"dict[str, {self.annotation(schema['values'], namespace)}]"
        if kind in _PRIMITIVES:
            return _PRIMITIVES[kind]
        raise UnsupportedSchema(f"no Python type for {schema!r}")

    @staticmethod
    def _nullable(union: list[Any]) -> Any:
        others = [branch for branch in union if branch != "null"]
        if len(others) != 1 or len(union) != 2:
            raise UnsupportedSchema(f"only [null, X] unions are supported, not {union!r}")
        return others[0]

    def _resolved(self, schema: Any, namespace: str) -> tuple[str, Any]:
        """What a type is made of, with names followed: (kind, schema)."""
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return "primitive", schema
            named = self.named[self._fullname(schema, namespace)]
            return named.schema["type"], named.schema
        if isinstance(schema, list):
            return "union", schema
        kind = schema["type"]
        if isinstance(kind, (dict, list)):
            return self._resolved(kind, namespace)
        if kind in ("record", "enum", "array", "map"):
            return kind, schema
        return "primitive", schema

    # --- conversions -------------------------------------------------------------------------

    def from_avro(
        self,
        schema: Any,
        namespace: str,
        value: str,
        depth: int = 0,
        tag: str = "",
        method: str = "from_avro",
    ) -> str:
        """An expression turning the Avro value ``value`` into its Python type (nested records
        by ``method``)."""
        kind, resolved = self._resolved(schema, namespace)
        item = f"_{tag}{depth}"
        if kind == "primitive":
            return value
        if kind == "enum":
            return f"_{resolved['name']}_SYMBOLS[{value}]"
        if kind == "record":
            return f"{resolved['name']}.{method}({value})"
        if kind == "union":
            branch = self._nullable(resolved)
            inner = self.from_avro(branch, namespace, item, depth + 1, tag, method)
            if inner == item:
                return value
            return f"None if ({item} := {value}) is None else {inner}"
        if kind == "array":
            inner = self.from_avro(resolved["items"], namespace, item, depth + 1, tag, method)
            if inner == item:
                return f"tuple({value})"
            return f"tuple([{inner} for {item} in {value}])"
        inner = self.from_avro(resolved["values"], namespace, item, depth + 1, tag, method)
        if inner == item:
            return f"dict({value})"
        return f"{{_k{tag}{depth}: {inner} for _k{tag}{depth}, {item} in {value}.items()}}"

    def to_avro(
        self, schema: Any, namespace: str, value: str, depth: int = 0, tag: str = ""
    ) -> str:
        """An expression turning the Python value ``value`` into what the Avro writer takes."""
        kind, resolved = self._resolved(schema, namespace)
        item = f"_{tag}{depth}"
        if kind in ("primitive", "enum"):
            return value  # a StrEnum member is its symbol
        if kind == "record":
            return f"{value}.to_avro()"
        if kind == "union":
            inner = self.to_avro(self._nullable(resolved), namespace, item, depth + 1, tag)
            if inner == item:
                return value
            return f"None if ({item} := {value}) is None else {inner}"
        if kind == "array":
            inner = self.to_avro(resolved["items"], namespace, item, depth + 1, tag)
            if inner == item:
                return f"list({value})"
            return f"[{inner} for {item} in {value}]"
        inner = self.to_avro(resolved["values"], namespace, item, depth + 1, tag)
        if inner == item:
            return f"dict({value})"
        return f"{{_k{tag}{depth}: {inner} for _k{tag}{depth}, {item} in {value}.items()}}"

    def default(self, schema: Any, namespace: str, value: Any) -> str:
        """The dataclass default for an Avro field default: the value itself when immutable,
        else a factory."""
        literal = self.literal(schema, namespace, value)
        kind, _ = self._resolved(schema, namespace)
        if kind in ("record", "map"):
            return f"field(default_factory=lambda: {literal})"
        return literal

    def literal(self, schema: Any, namespace: str, value: Any) -> str:
        """An Avro (JSON) default as a Python expression of the field's type."""
        kind, resolved = self._resolved(schema, namespace)
        if kind == "union":
            # Avro: a union's default is of its first branch; ours are all null first.
            return "None" if value is None else self.literal(resolved[0], namespace, value)
        if kind == "enum":
            return f"{resolved['name']}.{value}"
        if kind == "record":
            space = resolved.get("namespace", namespace)
            types = {item["name"]: item["type"] for item in resolved["fields"]}
            arguments = ", ".join(
                f"{name}={self.literal(types[name], space, item)}" for name, item in value.items()
            )
            return f"{resolved['name']}({arguments})"
        if kind == "array":
            items = "".join(f"{self.literal(resolved['items'], namespace, v)}, " for v in value)
            return f"({items})"
        if kind == "map":
            entries = ", ".join(
                f"{key!r}: {self.literal(resolved['values'], namespace, v)}"
                for key, v in value.items()
            )
            return f"{{{entries}}}"
        if isinstance(value, str) and _resolved_primitive(resolved) == "bytes":
            return repr(value.encode("latin-1"))  # Avro: bytes defaults are written as strings
        return repr(value)

    # --- source ------------------------------------------------------------------------------

    def enum(self, schema: dict[str, Any]) -> Iterator[str]:
        name = schema["name"]
        yield ""
        yield ""
        yield f"class {name}(StrEnum):"
        yield from _docstring(schema.get("doc"), "    ")
        for symbol in schema["symbols"]:
            member = f"{symbol}_" if keyword.iskeyword(symbol) else symbol
            yield f"    {member} = {symbol!r}"
        yield ""
        yield ""
        yield f"_{name}_SYMBOLS: dict[str, {name}] = {{member.value: member for member in {name}}}"

    def record(self, fullname: str, schema: dict[str, Any]) -> Iterator[str]:
        name = schema["name"]
        namespace = fullname.rsplit(".", 1)[0]
        fields = schema["fields"]
        for item in fields:
            if keyword.iskeyword(item["name"]) or item["name"] in _METHODS:
                raise UnsupportedSchema(f"{fullname}.{item['name']} is not a usable Python name")
        yield ""
        yield ""
        yield "@dataclass(frozen=True, kw_only=True)"
        yield f"class {name}:"
        yield from _docstring(schema.get("doc"), "    ")
        yield ""
        yield f"    SCHEMA: ClassVar[str] = {fullname!r}"
        yield ""
        for item in fields:
            annotation = self.annotation(item["type"], namespace)
            line = f"    {item['name']}: {annotation}"
            if "default" in item:
                line += f" = {self.default(item['type'], namespace, item['default'])}"
            yield line
            yield from _docstring(item.get("doc"), "    ")
        yield ""
        yield "    @classmethod"
        yield "    def from_avro(cls, value: Mapping[str, Any]) -> Self:"
        yield '        """The record from its Avro value, as the serde reads it."""'
        yield "        record = _new(cls)"
        yield "        _set(record, '__dict__', {"
        for index, item in enumerate(fields):
            name_ = item["name"]
            if "default" in item:
                # A value built by hand may leave a field with a default out, as Avro allows.
                source = f"value.get({name_!r}, {self.default_value(item)})"
            else:
                source = f"value[{name_!r}]"
            converted = self.from_avro(item["type"], namespace, source, tag=f"{index}_")
            yield f"            {name_!r}: {converted},"
        yield "        })"
        yield "        return record"
        yield ""
        yield "    @classmethod"
        yield "    def adopt_avro(cls, value: dict[str, Any]) -> Self:"
        yield '        """``from_avro`` of a whole value just decoded, that nobody else holds'
        yield "        (the serde's): the dict becomes the record's, its fields converted in place."
        yield '        """'
        for index, item in enumerate(fields):
            name_ = item["name"]
            source = f"value[{name_!r}]"
            converted = self.from_avro(
                item["type"], namespace, source, tag=f"{index}_", method="adopt_avro"
            )
            if converted != source:
                yield f"        {source} = {converted}"
        yield "        record = _new(cls)"
        yield "        _set(record, '__dict__', value)"
        yield "        return record"
        yield ""
        yield "    def to_avro(self) -> dict[str, Any]:"
        yield '        """The Avro value of the record, for the serde to write."""'
        yield "        return {"
        for index, item in enumerate(fields):
            name_ = item["name"]
            converted = self.to_avro(item["type"], namespace, f"self.{name_}", tag=f"{index}_")
            yield f"            {name_!r}: {converted},"
        yield "        }"

    def default_value(self, item: dict[str, Any]) -> str:
        """A field's Avro default as a constant of the module (built once, never changed)."""
        value = item["default"]
        if value is None or isinstance(value, (bool, int, float, str)):
            return repr(value)
        constant = f"_DEFAULT_{len(self.defaults)}"
        self.defaults.append(f"{constant}: Any = {_frozen_literal(value)}")
        return constant


def _resolved_primitive(schema: Any) -> str:
    return schema if isinstance(schema, str) else str(schema.get("type"))


def _frozen_literal(value: Any) -> str:
    """A default as a Python literal, arrays as tuples so the constant cannot be changed."""
    if isinstance(value, list):
        return "(" + "".join(f"{_frozen_literal(item)}, " for item in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_frozen_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _docstring(doc: str | None, indent: str) -> Iterator[str]:
    if doc:
        text = doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
        yield f'{indent}"""{text}"""'


HEADER = '''"""The records of ``schemas/`` as Python types: generated, do not edit.

Regenerate with ``python -m services.common.records_codegen`` after changing a schema (a test
fails until the committed module is what the schemas give). Each record is a frozen dataclass of
the latest version of its schema; ``from_avro`` takes the value the serde decodes (any released
version, resolved to the latest) and ``to_avro`` gives the value it writes.
"""

# ruff: noqa: E501

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Self

# Setting the attributes at once: a frozen dataclass's __init__ sets them one call each.
_new = object.__new__
_set = object.__setattr__
'''


def record_schemas() -> list[str]:
    """Every schema file's full name, in file order."""
    return sorted(path.stem for path in SCHEMAS_DIR.glob("*.avsc"))


def generate() -> str:
    """The source of ``services/common/records.py`` for the schemas as they are now."""
    found: dict[str, _Named] = {}
    order: list[str] = []
    for fullname in record_schemas():
        # The files as authored: each named type is defined in one place and referred to by
        # name elsewhere (an expanded schema inlines a type wherever it is first used).
        _collect(json.loads(schema_path(fullname).read_text(encoding="utf-8")), "", found, order)
    module = _Module(found)
    enums: list[str] = []
    records: list[str] = []
    for fullname in order:
        named = found[fullname]
        if named.schema["type"] == "enum":
            enums.extend(module.enum(named.schema))
        else:
            records.extend(module.record(fullname, named.schema))
    defaults = ["", "", *module.defaults] if module.defaults else []
    names = sorted(_short(name) for name in order)
    exports = ["", "", "__all__ = ["] + [f"    {name!r}," for name in names] + ["]"]
    source = "\n".join([HEADER.rstrip("\n"), *enums, *defaults, *records, *exports]) + "\n"
    return _formatted(source)


def _formatted(source: str) -> str:
    """The source as ``ruff format`` leaves it, so formatting the tree never makes it differ
    from what the schemas give."""
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", f"--stdin-filename={TARGET}", "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
    )
    return formatted.stdout


def main() -> None:
    source = generate()
    if TARGET.exists() and TARGET.read_text(encoding="utf-8") == source:
        print(f"{TARGET} is up to date")
        return
    TARGET.write_text(source, encoding="utf-8")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
