"""The language reference's examples, verbatim (tests/contract/spec.synth), compile cleanly,
and the plan honours what the reference promises about them."""

import json
from pathlib import Path

from synthlang.compiler import compile
from synthlang.diagnostics import Severity

SPEC = Path(__file__).parent / "contract" / "spec.synth"


def test_contract_compiles_without_errors():
    result = compile(SPEC)
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    assert errors == []
    assert result.plan is not None


def test_contract_plan_content():
    plan = compile(SPEC).plan
    data = json.loads(plan.to_json())
    block = plan.block("Ticket")
    # quota met exactly: 30/20/25/20/5 % of 2000
    assert {c.key["intent"]: c.count for c in block.cells} == {
        "billing": 600, "outage": 400, "login": 500, "refund": 400, "data_loss": 100}
    props = block.json_schema["properties"]
    # sampled and quota fields are not written by the model
    assert set(props) == {"subject", "body", "order_id", "tags", "score", "urgent"}
    assert props["subject"] == {"type": "string", "minLength": 8, "maxLength": 80}
    assert props["order_id"]["anyOf"][0]["pattern"] == "^ORD-[0-9]{6}$"
    assert props["tags"]["maxItems"] == 4 and props["tags"]["items"]["maxLength"] == 20
    assert {s.path[0]: s.sampler.method for s in block.sampled} == {
        "priority": "uniform", "channel": "weights", "opened": "uniform"}
    assert [(n.field, n.rule, n.rate) for n in block.noise] == [
        ("body", "typo", 0.02), ("body", "lowercase", 0.1), ("subject", "strip_punct", 0.05)]
    assert block.dedup[0].threshold == 0.85 and block.judge.min_score == 4
    assert block.examples.matching == ("intent",)
    assert data["output"]["mix"] == {"kind": "mix", "seeds": "real_tickets", "share": 25.0}
    assert data["evaluate"][0]["compare"] == ["real", "synthetic", "blend"]
    # the Address example: mentions compile to an ordered decoding constraint
    assert "Address" in plan.schemas
    assert plan.hash.startswith("sha256:") and len(plan.hash) == 71


def test_plan_is_o_cells_not_o_count(tmp_path):
    spec = (tmp_path / "big.synth")
    spec.write_text('enum E { a, b }\nschema S { e: E\n t: str(1..9) }\n'
                    'generate S { count 10_000_000\n quota e { a: 50%, b: 50% } }\n')
    plan = compile(spec).plan
    assert [c.count for c in plan.blocks[0].cells] == [5_000_000, 5_000_000]
    assert len(plan.to_json()) < 20_000


MULTI_STEP = Path(__file__).parent / "contract"


def test_the_multi_step_examples_compile_into_steps():
    plan = compile(MULTI_STEP / "steps.synth").plan
    assert plan is not None
    chain = plan.block("Exchange")
    assert [s.fields for s in chain.steps] == [("question", "difficulty"), ("answer",), ("followup",)]
    assert [s.model for s in chain.steps][:2] == ["writer", "served"]
    assert chain.steps[2].when is not None
    assert set(chain.steps[0].json_schema["properties"]) == {"question", "difficulty"}
    pref = plan.block("Preference")
    candidates = pref.steps[1]
    assert candidates.fields == ("chosen", "rejected") and candidates.candidates == 4
    assert candidates.model == "writer" and candidates.judge_model == "served"
    assert set(candidates.json_schema["properties"]) == {"chosen"}
    assert plan.output.format == "preference" and plan.output.format_fields == ("prompt", "chosen", "rejected")


def test_the_dialogue_example_compiles_into_turns():
    result = compile(MULTI_STEP / "chat.synth")
    assert [d for d in result.diagnostics if d.severity is Severity.ERROR] == []
    block = result.plan.block("SupportChat")
    (dialogue,) = block.steps
    assert dialogue.fields == ("turns",) and dialogue.rounds == (1, 3)
    assert [(t.role, t.model) for t in dialogue.turns] == [("user", "writer"), ("assistant", "served")]
    assert dialogue.json_schema["properties"] == {"content": {"type": "string", "minLength": 1, "maxLength": 800}}
    assert result.plan.output.format == "chat" and result.plan.output.format_fields == ("turns",)


def test_the_growth_examples_compile_into_grown_blocks():
    plan = compile(SPEC.parent / "grow.synth").plan
    assert plan is not None
    ticket, address = plan.block("Ticket"), plan.block("regrown")
    assert ticket.grow is not None and ticket.grow.seeds == "real_tickets"
    assert ticket.grow.rewrite == ("body",) and ticket.grow.resample == ("priority", "channel")
    assert ticket.grow.match == ("intent",)                        # rows come from the record's cell
    assert set(ticket.json_schema["properties"]) == {"body"}       # the model writes only what it rewrites
    assert [(r.field, r.text) for r in ticket.labels] == [("intent", ("body",))]   # the label check, on by default
    assert address.grow is not None and address.grow.rewrite == () and address.prompt == ""
    assert address.labels == ()                                    # no label: no check


def test_the_list_examples_compile_into_drawn_lists():
    result = compile(SPEC.parent / "lists.synth")
    assert [d for d in result.diagnostics if d.severity is Severity.ERROR] == []
    plan = result.plan
    assert plan is not None
    invoice = plan.block("Invoice")
    items = next(s for s in invoice.sampled if s.path == ("items",))
    assert items.sampler.method == "uniform"                       # no source: the count drawn uniformly
    assert [s.path for s in items.items] == [("product",), ("qty",), ("unit_price",)]
    assert set(invoice.json_schema["properties"]) == {"text"}       # the model writes only the text
    bill = plan.block("Bill")
    lines = next(s for s in bill.sampled if s.path == ("lines",))
    assert lines.sampler.method == "weights" and lines.sampler.weights == (4.0, 3.0, 2.0, 1.0)
    props = bill.json_schema["properties"]
    assert props["lines"]["items"]["properties"].keys() == {"note"}   # the items' model-written field
    early = {".".join(d.path) for d in bill.derived if d.early}
    assert early == {"lines.price", "lines.amount", "total", "first", "most"}
    (mention,) = bill.mentions
    assert mention.values == ("vendor", "lines.product", "lines.qty", "total")
    assert mention.decimals == {"total": 2}                         # written as 12.50


def test_the_conditional_sampler_examples_compile_with_their_cases():
    result = compile(SPEC.parent / "conditional.synth")
    assert [d for d in result.diagnostics if d.severity is Severity.ERROR] == []
    block = result.plan.block("Ticket")
    product, channel = block.sampled
    assert product.sampler.method == "pick_by" and product.sampler.by == "intent"
    assert {c.when: c.values for c in product.sampler.cases} == {
        "billing": ("web dashboard", "API"), "login": ("mobile app", "web dashboard")}
    assert product.sampler.default.values == ("desktop client",)
    assert channel.sampler.method == "weights_by" and channel.sampler.case_for("outage").weights == (1.0, 3.0, 2.0)
    assert channel.sampler.case_for("refund") == channel.sampler.default


def test_the_draw_examples_compile_and_keep_the_rows_in_their_files():
    result = compile(SPEC.parent / "draw.synth")
    assert [d for d in result.diagnostics if d.severity is Severity.ERROR] == []
    persona, topic = result.plan.block("Ticket").sampled
    assert persona.sampler.method == "draw" and persona.sampler.column is None
    assert (topic.sampler.seeds, topic.sampler.column, topic.sampler.matching, topic.sampler.weight) == \
        ("topics", "name", "intent", "weight")
    assert [(s.inline, s.row_count, len(s.rows)) for s in result.plan.seeds.values()] == [(False, 3, 0), (False, 6, 0)]
