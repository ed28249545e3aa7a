"""The widget's Python/JS contract: both sides agree with recsys_nb/widget/contract.json.

contract.json is the one source of truth. This test compares it with

- the Python side: the synced traits of ``RecommenderWidget`` (names, types, defaults),
  its message handlers (kinds; the request fields each reads, from its source; the reply
  fields it sends, by running it), the items and recommendations it sends, the limits;
- the TypeScript side: widgets-react/src/contract.ts as the TypeScript parser reads it
  (the ``WidgetModel`` traits and their types, the request variants of each kind, the
  reply of each kind, ``WireItem``, ``Recommendation``, ``Envelope``); and tsc itself,
  which checks the key sets through the JSON import (``ContractChecks``).

Each check is also run on a mutated copy (a trait added on one side only, a field
dropped...) to show that it fails then. Needs node and widgets-react/node_modules.
"""

from __future__ import annotations

import ast
import copy
import inspect
import io
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import traitlets as t
from PIL import Image

from recsys_nb.protocol import filter_mask, result_table
from recsys_nb.widget import HANDLERS, RecommenderWidget, contract
from recsys_nb.widget.contract import CONTRACT, CONTRACT_PATH, contract_traits

REPO = Path(__file__).resolve().parent.parent
WIDGET_DIR = REPO / "widgets-react"
CONTRACT_TS = WIDGET_DIR / "src" / "contract.ts"
PY_TYPES = {t.Int: "int", t.Bool: "bool", t.Unicode: "str", t.List: "list", t.Dict: "dict"}

# --- the Python side ----------------------------------------------------------------------


def py_type(trait: t.TraitType) -> str:
    name = next((v for k, v in PY_TYPES.items() if type(trait) is k), type(trait).__name__)
    return name + ("|null" if trait.allow_none else "")


def request_fields(function) -> set[str]:
    """The keys a handler reads from its request: ``content["x"]`` and ``content.get("x")``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    fields = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == "content"
            and isinstance(node.slice, ast.Constant)
        ):
            fields.add(node.slice.value)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "content"
            and isinstance(node.args[0], ast.Constant)
        ):
            fields.add(node.args[0].value)
    return fields


def python_problems(schema: dict, cls=RecommenderWidget, handlers=HANDLERS) -> list[str]:
    """Where the Python declarations disagree with ``schema`` (empty: they agree)."""
    problems = []
    traits = contract_traits(cls)
    for name in sorted(set(traits) - set(schema["traits"])):
        problems.append(f"trait {name!r} is synced by Python but not in contract.json")
    for name in sorted(set(schema["traits"]) - set(traits)):
        problems.append(f"trait {name!r} of contract.json is not a synced Python trait")
    for name in sorted(set(traits) & set(schema["traits"])):
        spec, trait = schema["traits"][name], traits[name]
        if py_type(trait) != spec["py"]:
            problems.append(f"trait {name!r}: Python {py_type(trait)}, contract {spec['py']}")
        if trait.default() != spec["default"]:
            problems.append(f"trait {name!r}: default {trait.default()!r} != {spec['default']!r}")
    if set(handlers) != set(schema["messages"]):
        problems.append(
            f"message kinds: Python {sorted(handlers)}, contract {sorted(schema['messages'])}"
        )
    for kind in sorted(set(handlers) & set(schema["messages"])):
        method = getattr(cls, handlers[kind], None)
        if method is None:
            problems.append(f"message {kind!r}: no method {handlers[kind]}")
            continue
        read, declared = request_fields(method), set(schema["messages"][kind]["request"])
        if read != declared:
            problems.append(
                f"message {kind!r} request: Python reads {sorted(read)}, "
                f"contract {sorted(declared)}"
            )
    for name, value in schema["limits"].items():
        if getattr(contract, f"MAX_{name.removeprefix('max_').upper()}", None) != value:
            problems.append(f"limit {name}: not contract.MAX_{name.removeprefix('max_').upper()}")
    return problems


def test_python_traits_and_handlers_follow_the_contract():
    assert json.loads(CONTRACT_PATH.read_text()) == CONTRACT
    assert python_problems(CONTRACT) == []


def test_python_check_fails_when_one_side_changes():
    class Extra(RecommenderWidget):
        extra = t.Int(0).tag(sync=True)

    assert python_problems(CONTRACT, cls=Extra) == [
        "trait 'extra' is synced by Python but not in contract.json"
    ]
    schema = copy.deepcopy(CONTRACT)
    schema["traits"]["zoom"] = {"py": "int", "ts": "number", "default": 1}
    schema["traits"]["k"]["default"] = 5
    schema["messages"]["page"]["request"]["sort"] = "string"
    schema["messages"]["ping"] = {"request": {}, "reply": {}}
    problems = python_problems(schema)
    assert "trait 'zoom' of contract.json is not a synced Python trait" in problems
    assert "trait 'k': default 10 != 5" in problems
    assert any(p.startswith("message 'page' request: Python reads") for p in problems)
    assert any(p.startswith("message kinds:") for p in problems)
    assert len(problems) == 4


class TinyStore:
    """A store with the read interface the widget needs: meta, recommend()."""

    def __init__(self):
        self.meta = pd.DataFrame(
            {
                "productDisplayName": [f"Product {i}" for i in range(6)],
                "articleType": ["Shirts", "Watches"] * 3,
                "gender": ["Men", "Women", "Men", "Women", "Men", "Women"],
            },
            index=pd.Index(range(100, 106), name="id"),
        )

    def recommend(self, item_id=None, *, vector=None, image=None, k=10, filters=None):
        mask = filter_mask(self.meta, filters)
        ids = self.meta.index if mask is None else self.meta.index[mask]
        ids = [i for i in ids if i != item_id][:k]
        return result_table(ids, np.linspace(1, 0.5, len(ids)), self.meta)

    def neighbours(self, ids, k=10, filters=None):
        return np.array([i for i in self.meta.index if i not in ids])


@pytest.fixture
def tiny_widget():
    w = RecommenderWidget(
        store=TinyStore(), thumbnails=lambda i: (b"\xff\xd8\xff" + bytes([i % 256]), "image/jpeg")
    )
    sent = []
    w.send = lambda content, buffers=None: sent.append(content)
    return w, sent


def reply_to(w, sent, content, buffers=()) -> dict:
    """The reply to one request (pushes that follow it are left in ``sent``)."""
    w._on_message(w, {"uuid": "u", **content}, list(buffers))
    return [m for m in sent if m.get("uuid") == "u"][-1]


def check_item(item: dict) -> None:
    fields = CONTRACT["wire_item"]
    required = {k for k, v in fields.items() if not v.endswith("?")}
    assert required <= set(item) <= set(fields), sorted(item)


def test_python_replies_have_the_contract_fields(tiny_widget):
    w, sent = tiny_widget
    envelope = set(CONTRACT["envelope"]["reply"]) - {"error"}
    png = io.BytesIO()
    Image.new("RGB", (30, 40), "red").save(png, format="PNG")
    requests = {
        "page": ({"search": "", "filters": {}, "offset": 0, "limit": 4}, []),
        "recommend": ({"item_id": 101}, []),
        "items": ({"ids": [100, 102]}, []),
    }
    assert set(requests) == set(CONTRACT["messages"])
    for kind, (fields, buffers) in requests.items():
        assert set(fields) <= set(CONTRACT["messages"][kind]["request"])
        reply = reply_to(w, sent, {"kind": kind, **fields}, buffers)
        assert reply["ok"], reply
        assert set(reply) == envelope | set(CONTRACT["messages"][kind]["reply"]), kind
        for item in reply["items"] + ([reply["query"]] if reply.get("query") else []):
            check_item(item)
    assert all(set(r) == set(CONTRACT["recommendation"]) for r in w.recommendations)
    image = {"kind": "recommend", "image": {"name": "a.png", "type": "image/png"}}
    reply = reply_to(w, sent, image, [png.getvalue()])
    assert reply["ok"] and reply["query"] is None and reply["selected"] is None
    bad = reply_to(w, sent, {"kind": "recommend", "item_id": 9})
    assert set(bad) == set(CONTRACT["envelope"]["reply"]) and bad["ok"] is False


def test_python_pushes_have_the_contract_fields(tiny_widget):
    w, sent = tiny_widget
    w.k = 2
    reply_to(w, sent, {"kind": "recommend", "item_id": 101})
    pushes = [m for m in sent if "uuid" not in m]
    assert {m["kind"] for m in pushes} == set(CONTRACT["pushes"]), "a recommend is followed by one"
    for push in pushes:
        assert set(push) == {"kind"} | set(CONTRACT["pushes"][push["kind"]]["message"])
        for item in push["items"]:
            check_item(item)
    assert [i["id"] for p in pushes for i in p["items"]] == [103, 104, 105]  # not sent yet


# --- the TypeScript side ------------------------------------------------------------------

SHAPE_JS = r"""
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";
const require = createRequire(path.join(process.env.WIDGET_DIR, "package.json"));
const ts = require("typescript");
const file = process.argv[1];
const src = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
const text = (node) => node.getText(src).replace(/\s+/g, " ").trim();
const members = (node) => {
  const out = {};
  for (const m of node.members) {
    if (ts.isPropertySignature(m))
      out[text(m.name)] = (m.type ? text(m.type) : "any") + (m.questionToken ? "?" : "");
  }
  return out;
};
const variants = (type) => {
  if (ts.isUnionTypeNode(type)) return type.types.flatMap(variants);
  if (ts.isTypeLiteralNode(type)) return [members(type)];
  if (ts.isTypeReferenceNode(type)) return [{ $ref: text(type.typeName) }];
  return [{ $type: text(type) }];
};
const out = {};
for (const st of src.statements) {
  if (ts.isInterfaceDeclaration(st)) out[st.name.text] = [members(st)];
  else if (ts.isTypeAliasDeclaration(st)) out[st.name.text] = variants(st.type);
}
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    assert node, "node not found: install Node 20+ (the widget's front end is built with it)"
    assert (WIDGET_DIR / "node_modules" / "typescript").is_dir(), (
        "widgets-react/node_modules is missing: run `make widget` (or npm ci there)"
    )
    return node


def ts_declarations(node: str, path: Path) -> dict:
    """Every interface and type alias of a .ts file: name -> variants (field -> type text)."""
    run = subprocess.run(
        [node, "--input-type=module", "-e", SHAPE_JS, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "WIDGET_DIR": str(WIDGET_DIR)},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def compare(what: str, ts_fields: dict, schema_fields: dict) -> list[str]:
    problems = []
    for name in sorted(set(ts_fields) | set(schema_fields)):
        if name not in schema_fields:
            problems.append(f"{what}: {name!r} is in contract.ts but not in contract.json")
        elif name not in ts_fields:
            problems.append(f"{what}: {name!r} of contract.json is not in contract.ts")
        elif ts_fields[name] != schema_fields[name]:
            problems.append(
                f"{what}.{name}: contract.ts {ts_fields[name]!r}, "
                f"contract.json {schema_fields[name]!r}"
            )
    return problems


def ts_problems(schema: dict, decls: dict) -> list[str]:
    """Where the TypeScript declarations disagree with ``schema`` (empty: they agree)."""
    one = lambda name: decls[name][0]  # noqa: E731 - an interface: one variant
    traits = {name: spec["ts"] for name, spec in schema["traits"].items()}
    problems = compare("trait", one("WidgetModel"), traits)
    requests: dict[str, dict] = {}
    for ref in decls["Request"]:
        for variant in decls[ref["$ref"]]:
            fields = dict(variant)
            kind = json.loads(fields.pop("kind"))
            requests.setdefault(kind, {}).update(fields)
    replies = {kind: one(ref) for kind, ref in one("Replies").items()}
    for kinds, side in ((requests, "request"), (replies, "reply")):
        if set(kinds) != set(schema["messages"]):
            problems.append(
                f"{side} kinds: contract.ts {sorted(kinds)}, "
                f"contract.json {sorted(schema['messages'])}"
            )
    for kind in sorted(set(schema["messages"]) & set(requests)):
        problems += compare(f"{kind} request", requests[kind], schema["messages"][kind]["request"])
    for kind in sorted(set(schema["messages"]) & set(replies)):
        problems += compare(f"{kind} reply", replies[kind], schema["messages"][kind]["reply"])
    problems += compare("WireItem", one("WireItem"), schema["wire_item"])
    problems += compare("Recommendation", one("Recommendation"), schema["recommendation"])
    problems += compare("CompareRow", one("CompareRow"), schema["compare_row"])
    problems += compare("ComparedItem", one("ComparedItem"), schema["compared_item"])
    problems += compare("Envelope", one("Envelope"), schema["envelope"]["reply"])
    return problems


def test_typescript_declarations_follow_the_contract(node):
    assert ts_problems(CONTRACT, ts_declarations(node, CONTRACT_TS)) == []


def test_typescript_check_fails_when_one_side_changes(node, tmp_path):
    source = CONTRACT_TS.read_text()
    last = "  subset: number[] | null;\n}"  # the end of WidgetModel
    mutated = source.replace(last, last[:-1] + "  zoom: number;\n}", 1)
    mutated = mutated.replace("  offset: number;\n  limit: number;", "  offset: number;", 1)
    assert mutated.count("zoom") == 1 and mutated != source
    (tmp_path / "contract.ts").write_text(mutated)
    problems = ts_problems(CONTRACT, ts_declarations(node, tmp_path / "contract.ts"))
    assert problems == [
        "trait: 'zoom' is in contract.ts but not in contract.json",
        "page request: 'limit' of contract.json is not in contract.ts",
    ]
    schema = copy.deepcopy(CONTRACT)
    schema["traits"]["selected"]["ts"] = "number"
    schema["wire_item"]["price"] = "number"
    problems = ts_problems(schema, ts_declarations(node, CONTRACT_TS))
    assert problems == [
        "trait.selected: contract.ts 'number | null', contract.json 'number'",
        "WireItem: 'price' of contract.json is not in contract.ts",
    ]


def tsc_copy(node: str, root: Path, schema: dict) -> subprocess.CompletedProcess:
    """tsc on a copy of contract.ts next to ``schema`` (same layout as the repository)."""
    (root / "widgets-react" / "src").mkdir(parents=True)
    (root / "recsys_nb" / "widget").mkdir(parents=True)
    shutil.copy(CONTRACT_TS, root / "widgets-react" / "src" / "contract.ts")
    (root / "recsys_nb" / "widget" / "contract.json").write_text(json.dumps(schema))
    (root / "widgets-react" / "node_modules").symlink_to(WIDGET_DIR / "node_modules")
    tsc = WIDGET_DIR / "node_modules" / "typescript" / "bin" / "tsc"
    options = "--noEmit --strict --target ES2020 --module ESNext --moduleResolution Bundler"
    options += " --resolveJsonModule --skipLibCheck --lib ES2022,DOM"
    return subprocess.run(
        [node, str(tsc), *options.split(), "src/contract.ts"],
        cwd=root / "widgets-react",
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_tsc_fails_when_contract_json_gains_a_trait(node, tmp_path):
    ok = tsc_copy(node, tmp_path / "same", CONTRACT)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    schema = copy.deepcopy(CONTRACT)
    schema["traits"]["zoom"] = {"py": "int", "ts": "number", "default": 1}
    failed = tsc_copy(node, tmp_path / "more", schema)
    assert failed.returncode != 0 and "does not satisfy the constraint 'true'" in failed.stdout


def test_the_contract_is_consistent():
    ts_of = {"int": "number", "bool": "boolean", "str": "string"}
    for name, spec in CONTRACT["traits"].items():
        base, _, null = spec["py"].partition("|")
        expected = ts_of.get(base)
        if expected:
            assert spec["ts"] == expected + (" | null" if null else ""), name
        else:
            ts = spec["ts"].removesuffix(" | null" if null else "")
            assert ts.endswith("[]" if base == "list" else ">"), name
        assert spec["writer"] in ("python", "both") and spec["doc"], name
    assert CONTRACT["limits"]["max_upload_bytes"] == 20 * 2**20
