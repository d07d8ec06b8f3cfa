"""`synthc lsp` end to end: the server is started as a subprocess and spoken to over stdio as an
editor would (tests/lsp_client.py), on a copy of the ticket example (a spec, the file it imports,
its seed file)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lsp_client import LspClient, LspError

from synthlang import compiler
from synthlang.syntax.format import format_text

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("lsp") / "support_tickets"
    shutil.copytree(ROOT / "specs" / "support_tickets", dest)
    return dest


@pytest.fixture(scope="module")
def client(folder):
    c = LspClient(folder)
    c.initialize(folder)
    yield c
    assert c.shutdown() == 0


@pytest.fixture
def spec(folder, client):
    """tickets.synth, open in the editor as it is on disk; closed again after the test."""
    path = folder / "tickets.synth"
    client.open(path)
    client.diagnostics(path)
    yield path
    client.close(path)
    client.drain()


def pos(text: str, needle: str, nth: int = 0, into: int = 0) -> dict:
    """The LSP position of the nth occurrence of needle, `into` characters into it."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    at += into
    line = text.count("\n", 0, at)
    return {"line": line, "character": at - (text.rfind("\n", 0, at) + 1)}


def doc(path: Path, position: dict) -> dict:
    return {"textDocument": {"uri": path.as_uri()}, "position": position}


def apply(text: str, edits: list[dict]) -> str:
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)

    def at(p: dict) -> int:
        return starts[p["line"]] + p["character"]
    for e in sorted(edits, key=lambda e: at(e["range"]["start"]), reverse=True):
        text = text[:at(e["range"]["start"])] + e["newText"] + text[at(e["range"]["end"]):]
    return text


def as_check(path: Path) -> list[tuple]:
    """What `synthc check` says about a file, in the server's terms: code, 0-based range, message."""
    out = []
    for d in compiler.check(path).diagnostics:
        if d.span is not None and Path(d.span.path).resolve() == path.resolve():
            (l1, c1), (l2, c2) = (d.span.line, d.span.col), d.span.end_line_col
            out.append((d.code, l1 - 1, c1 - 1, l2 - 1, c2 - 1, d.message))
    return sorted(out)


def as_server(diags: list[dict]) -> list[tuple]:
    return sorted((d["code"], d["range"]["start"]["line"], d["range"]["start"]["character"],
                   d["range"]["end"]["line"], d["range"]["end"]["character"], d["message"].split("\nhelp:")[0])
                  for d in diags)


# diagnostics ---------------------------------------------------------------------------------------
def test_diagnostics_on_open_and_on_change_are_those_of_synthc_check(folder, client, tmp_path):
    path = folder / "tickets.synth"
    good = path.read_text()
    bad = good.replace("check len(body) > len(subject)", "check len(bodyy) > 2 * subject")
    client.open(path, bad)
    diags = client.diagnostics(path, lambda d: len(d) > 0)
    twin = tmp_path / "support_tickets"
    shutil.copytree(folder, twin)
    (twin / "tickets.synth").write_text(bad)
    assert as_server(diags) == as_check(twin / "tickets.synth") and len(diags) >= 2
    unknown = next(d for d in diags if "bodyy" in d["message"])
    assert unknown["code"] == "E0101" and unknown["severity"] == 1 and unknown["source"] == "synthc"
    assert "help: did you mean `body`?" in unknown["message"]
    assert unknown["range"] == {"start": pos(bad, "bodyy"), "end": pos(bad, "bodyy", into=5)}
    client.change(path, good, 2)   # fixed while typing: checked once typing pauses
    assert client.diagnostics(path) == []
    client.close(path)
    client.drain()


def test_a_syntax_error_is_reported_and_the_rest_is_still_checked(folder, client):
    path = folder / "tickets.synth"
    text = path.read_text()
    broken = (text.replace("  count 40\n", "  count 40\n  quota {\n")                     # half-typed item
              .replace("product:  str ~ pick(", "product:  strr ~ pick("))                 # and a type error
    client.open(path, broken)
    diags = client.diagnostics(path, lambda d: len(d) > 0)
    codes = sorted(d["code"] for d in diags)
    assert codes == ["E0001", "E0101"], diags
    syntax = next(d for d in diags if d["code"] == "E0001")
    assert syntax["range"]["start"] == pos(broken, "{", nth=broken.count("{", 0, broken.index("quota {")))
    assert "strr" in next(d for d in diags if d["code"] == "E0101")["message"]
    client.close(path)
    client.drain()


def test_problems_of_an_imported_file_and_of_a_seed_file_show_in_those_files(folder, client):
    common = folder / "common.synth"
    text = common.read_text()
    client.open(common, text.replace("temperature 0.8", "temperature 0.8\n  temprature 0.5"))
    diags = client.diagnostics(common, lambda d: len(d) > 0)
    assert [d["code"] for d in diags] == ["E0106"] and "did you mean `temperature`" in diags[0]["message"]
    seeds = folder / "seeds" / "tickets.jsonl"
    rows = seeds.read_text()
    client.open(seeds, rows.replace('"intent": "billing"', '"intent": "bill"', 1))
    client.change(common, text, 2)
    seed_diags = client.diagnostics(seeds, lambda d: len(d) > 0)
    assert seed_diags[0]["code"] == "E0302" and seed_diags[0]["range"]["start"]["line"] == 0
    client.close(seeds)
    assert client.diagnostics(seeds) == []     # back to the file on disk, which is clean
    client.close(common)
    client.drain()


def test_a_seed_file_changed_on_disk_is_checked_again(folder, client, spec):
    seeds = folder / "seeds" / "tickets.jsonl"
    rows = seeds.read_text()
    try:
        seeds.write_text(rows.replace('"intent": "billing"', '"intent": "bill"', 1))
        client.notify("workspace/didChangeWatchedFiles", {"changes": [{"uri": seeds.as_uri(), "type": 2}]})
        assert client.diagnostics(seeds, lambda d: len(d) > 0)[0]["code"] == "E0302"
    finally:
        seeds.write_text(rows)
    client.notify("workspace/didChangeWatchedFiles", {"changes": [{"uri": seeds.as_uri(), "type": 2}]})
    assert client.diagnostics(seeds) == []


# hover ---------------------------------------------------------------------------------------------
def test_hover_shows_a_fields_type_bounds_and_source(spec, client):
    text = spec.read_text()
    body = client.request("textDocument/hover", doc(spec, pos(text, "body", nth=2)))["contents"]["value"]
    assert "Ticket.body: str(40..300) (model-written)" in body
    urgent = client.request("textDocument/hover", doc(spec, pos(text, "urgent")))["contents"]["value"]
    assert "Ticket.urgent: bool = (priority >= 4) (derived)" in urgent
    channel = client.request("textDocument/hover", doc(spec, pos(text, "channel", nth=1)))["contents"]["value"]
    assert "~ weights(3.0, 2.0, 1.0) (sampled)" in channel
    model = client.request("textDocument/hover", doc(spec, pos(text, "using writer", into=7)))["contents"]["value"]
    assert "engine llamacpp" in model and "temperature 0.8" in model


def test_hover_on_a_quota_shows_each_cells_exact_record_count(spec, client):
    text = spec.read_text()
    value = client.request("textDocument/hover", doc(spec, pos(text, "outage: 20%", into=9)))["contents"]["value"]
    plan = compiler.compile(spec).plan
    for cell in plan.blocks[0].cells:
        assert f"| {cell.key['intent']} | {cell.count} |" in value
    assert sum(c.count for c in plan.blocks[0].cells) == 40 and "40 records, 5 cells" in value


def test_hover_on_a_diagnostic_explains_its_code(folder, client):
    path = folder / "tickets.synth"
    text = path.read_text().replace("dedup body near 0.85", "dedup body near 1.5")
    client.open(path, text)
    diags = client.diagnostics(path, lambda d: len(d) > 0)
    assert diags[0]["code"] == "E0801"
    value = client.request("textDocument/hover", doc(path, diags[0]["range"]["start"]))["contents"]["value"]
    assert "**E0801**: invalid dedup" in value and "docs/diagnostics.md" in value
    client.close(path)
    client.drain()


# navigation ----------------------------------------------------------------------------------------
def test_go_to_definition(spec, folder, client):
    text = spec.read_text()
    common = (folder / "common.synth").read_text()
    where = client.request("textDocument/definition", doc(spec, pos(text, "Intent")))
    assert where["uri"] == (folder / "common.synth").as_uri() and where["range"]["start"] == pos(common, "Intent")
    template = client.request("textDocument/definition", doc(spec, pos(text, "{{ product }}", into=4)))
    assert template["uri"] == spec.as_uri() and template["range"]["start"] == pos(text, "product:")
    example = client.request("textDocument/definition", doc(spec, pos(text, "ex.subject", into=4)))
    assert example["range"]["start"] == pos(text, "subject:")
    seeds = client.request("textDocument/definition", doc(spec, pos(text, "from real_tickets", into=6)))
    assert seeds["range"]["start"] == pos(text, "real_tickets")
    imported = client.request("textDocument/definition", doc(spec, pos(text, '"common.synth"', into=2)))
    assert imported["uri"] == (folder / "common.synth").as_uri()
    assert client.request("textDocument/definition", doc(spec, pos(text, "You write"))) is None


def test_find_references_includes_templates_checks_and_imports(spec, folder, client):
    text = spec.read_text()
    refs = client.request("textDocument/references", {**doc(spec, pos(text, "body:")),
                                                      "context": {"includeDeclaration": True}})
    lines = sorted(r["range"]["start"]["line"] for r in refs)
    expected = sorted({pos(text, "body:")["line"], pos(text, "ex.body")["line"],
                       pos(text, "noise body")["line"], pos(text, "len(body)")["line"],
                       pos(text, "(body contains")["line"], pos(text, "dedup body")["line"],
                       pos(text, "text body")["line"]})
    assert sorted(set(lines)) == expected and len(refs) == 7
    intents = client.request("textDocument/references", {**doc(spec, pos(text, "Intent")),
                                                         "context": {"includeDeclaration": False}})
    assert [r["uri"] for r in intents] == [spec.as_uri()]    # the declaration in common.synth left out


# completion ----------------------------------------------------------------------------------------
def complete(client, path: Path, text: str, at: dict) -> list[str]:
    client.change(path, text, 99)
    return [i["label"] for i in client.request("textDocument/completion", doc(path, at))["items"]]


def test_completion_in_context(spec, client):
    text = spec.read_text()

    def labels_at(edited: str, marker: str) -> list[str]:
        at = pos(edited, marker, into=len(marker))
        return complete(client, spec, edited, at)

    top = text + "\n"
    assert {"schema", "generate", "evaluate"} <= set(complete(client, spec, top,
                                                             {"line": top.count("\n"), "character": 0}))
    using = text.replace("using writer", "using ")
    assert labels_at(using, "using ") == ["writer"]
    quota = text.replace("billing: 25%, outage: 20%, login: 20%, refund: 20%, data_loss: 15%", "billing: 25%, ")
    assert labels_at(quota, "billing: 25%, ") == ["outage", "login", "refund", "data_loss"]
    template = text.replace("Priority {{ priority }}", "Priority {{ pri")
    got = labels_at(template, "{{ pri")
    assert "priority" in got and "examples" in got and "urgent" in got
    check = text.replace("check len(body) > len(subject)", "check len(")
    assert {"body", "subject", "len"} <= set(labels_at(check, "check len("))
    noise = text.replace("noise body { typo 2%, lowercase 10% }", "noise body { typo 2%, ")
    assert "lowercase" in labels_at(noise, "noise body { typo 2%, ")
    typed = text.replace("subject:  str(8..80)", "subject:  ")
    assert {"str", "int", "Intent", "Ticket"} <= set(labels_at(typed, "subject:  "))
    faker = text.replace('product:  str ~ pick("mobile app", "web dashboard", "API", "desktop client")',
                         'product:  str ~ faker("')
    assert {"name", "city", "company"} <= set(labels_at(faker, 'faker("'))
    examples = text.replace("examples 2 from real_tickets", "examples 2 from ")
    assert labels_at(examples, "examples 2 from ") == ["real_tickets"]
    client.change(spec, text, 100)


# outline, formatting, rename ------------------------------------------------------------------------
def test_document_symbols_outline_the_spec(spec, client):
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": spec.as_uri()}})
    names = [s["name"] for s in symbols]
    assert names == ["common.synth", "support_tickets", "Ticket", "real_tickets", "Ticket", "out/support_tickets",
                     "intent"]
    schema = symbols[2]
    assert [c["name"] for c in schema["children"]] == ["subject", "body", "intent", "priority", "channel",
                                                       "product", "opened", "urgent"]
    assert any(c["name"] == "quota intent" for c in symbols[4]["children"])


def test_formatting_gives_the_layout_of_synthc_fmt(folder, client):
    path = folder / "tickets.synth"
    messy = path.read_text().replace("  count 40", "count    40").replace("subject:  str(8..80)",
                                                                         "subject :str( 8..80 )")
    client.open(path, messy)
    client.diagnostics(path)
    edits = client.request("textDocument/formatting", {"textDocument": {"uri": path.as_uri()},
                                                       "options": {"tabSize": 2, "insertSpaces": True}})
    assert apply(messy, edits) == format_text(messy) != messy
    client.change(path, "schema {", 2)
    assert client.request("textDocument/formatting", {"textDocument": {"uri": path.as_uri()},
                                                      "options": {"tabSize": 2, "insertSpaces": True}}) is None
    client.close(path)
    client.drain()


def renamed(client, path: Path, at: dict, new: str) -> dict[str, list[dict]]:
    return client.request("textDocument/rename", {**doc(path, at), "newName": new})["changes"]


def test_rename_a_field_everywhere_and_in_the_seed_file(spec, folder, client, tmp_path):
    text = spec.read_text()
    changes = renamed(client, spec, pos(text, "body", nth=2), "message")
    seeds = folder / "seeds" / "tickets.jsonl"
    assert set(changes) == {spec.as_uri(), seeds.as_uri()}
    after = apply(text, changes[spec.as_uri()])
    assert "body" not in after.replace("nobody", "") and "{{ ex.message }}" in after and "text message" in after
    rows = apply(seeds.read_text(), changes[seeds.as_uri()])
    assert all('"message":' in line and '"body":' not in line for line in rows.splitlines())
    # the renamed spec, with its renamed seeds, checks clean and plans the same records
    twin = tmp_path / "t"
    shutil.copytree(folder, twin)
    (twin / "tickets.synth").write_text(after)
    (twin / "seeds" / "tickets.jsonl").write_text(rows)
    result = compiler.compile(twin / "tickets.synth")
    assert result.ok, result.diagnostics
    assert [c.count for c in result.plan.blocks[0].cells] == [c.count for c in
                                                               compiler.compile(spec).plan.blocks[0].cells]


def test_rename_an_enum_across_the_imported_file(spec, folder, client):
    text = spec.read_text()
    changes = renamed(client, spec, pos(text, "Intent"), "Topic")
    common = folder / "common.synth"
    assert set(changes) == {spec.as_uri(), common.as_uri()}
    assert "enum Topic {" in apply(common.read_text(), changes[common.as_uri()])
    assert "intent:   Topic" in apply(text, changes[spec.as_uri()])
    schema = renamed(client, spec, pos(text, "Ticket {"), "Issue")
    after = apply(text, schema[spec.as_uri()])
    assert "schema Issue {" in after and "generate Issue {" in after and "as Issue" in after


def test_rename_refuses_what_would_break_the_spec(spec, client):
    text = spec.read_text()
    for new, why in [("subject", "already declared"), ("2fast", "not a name"), ("schema", "keyword")]:
        with pytest.raises(LspError) as err:
            renamed(client, spec, pos(text, "body:"), new)
        assert why in str(err.value)
    prepare = client.request("textDocument/prepareRename", doc(spec, pos(text, "You write")))
    assert prepare is None


def test_a_recheck_is_timed_and_logged(spec, client):
    text = spec.read_text()
    client.change(spec, text + "\n", 200)
    client.diagnostics(spec)
    logs = [m["params"]["message"] for m in client.seen if m.get("method") == "window/logMessage"]
    assert any(m.startswith("checked tickets.synth in ") and m.endswith(" ms") for m in logs)


def test_quota_completion_quotes_a_value_that_is_not_a_name(tmp_path):
    from synthlang.lsp.analysis import analyse
    from synthlang.lsp.completion import complete

    spec = tmp_path / "q.synth"
    text = ('schema Q {\n  topic: "billing" | "api limits" | "privacy"\n  text: str(10..50)\n}\n\n'
            'generate Q {\n  count 10\n  quota topic { billing: 50%, }\n}\n')
    spec.write_text(text)
    at = text.index("billing: 50%, ") + len("billing: 50%, ")
    items = complete(analyse(spec.resolve(), {}), text, at)
    assert [(i.label, i.insert) for i in items] == [("api limits", '"api limits"'), ("privacy", None)]
