"""Records grown from real rows (`generate T from SEEDS`, `rewrite`, `resample`) and the label
check: mention replacement, the compiler's diagnostics, provenance and the label check's
verdicts, on the fake engine (the real-model test is in test_engine_grow.py)."""

import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthlang.compiler import compile
from synthlang.engines.base import GenerationResult
from synthlang.engines.fake import FakeEngine
from synthlang.runtime.driver import run_plan
from synthlang.runtime.grow import replace_mentions
from synthlang.runtime.label_check import LabelReader, reader_for
from synthlang.runtime.options import RunOptions

ADDRESS = '''schema Address {
  number: str(/[1-9][0-9]{0,3}/) ~ regex
  street: str ~ faker("street_name")
  city:   str ~ faker("city")
  kind:   "delivery" | "invoice"
  letter: str(20..300) mentions number, street, city
}
seeds letters from "letters.csv" as Address
'''

LETTERS = ('number,street,city,kind,letter\n'
           '12,Baker Street,London,delivery,"Hi Sam, send the parcel to 12 Baker Street, London by Friday."\n'
           '7,Elm Avenue,Springfield,invoice,"Invoices go to 7 Elm Avenue, Springfield; yes, Springfield."\n'
           '30,Mill Road,Leeds,delivery,"Deliveries: 30 Mill Road, Leeds. Ring twice at Mill Road."\n'
           '5,High Street,Bath,invoice,"Bill us at 5 High Street, Bath, thank you."\n')


def write(tmp_path, spec, files):
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    path = tmp_path / "spec.synth"
    path.write_text(spec, encoding="utf-8")
    return path


def run(path, out, engine=None):
    plan = compile(path).plan
    assert plan is not None
    # a scripted engine answers every request with its own text: no conformance probe for it
    run_plan(plan, RunOptions(out_dir=out, engine_factory=lambda m: engine or FakeEngine(), progress=False,
                              probe=engine is None))
    return plan, [json.loads(line) for f in sorted(out.glob("*.jsonl")) for line in f.read_text().splitlines()]


# mention replacement -----------------------------------------------------------------------------

def test_replacement_keeps_the_wording_and_gives_exact_spans():
    text = "Send it to 12 Baker Street, London by Friday."
    new, spans = replace_mentions(text, ("number", "street", "city"),
                                  {"number": "12", "street": "Baker Street", "city": "London"},
                                  {"number": "4410", "street": "Quai des Fleurs", "city": "Lyon"})
    assert new == "Send it to 4410 Quai des Fleurs, Lyon by Friday."
    assert [(new[s:e], f) for s, e, f in spans] == [("4410", "number"), ("Quai des Fleurs", "street"),
                                                    ("Lyon", "city")]


def test_a_value_written_twice_is_replaced_twice_with_a_span_each():
    new, spans = replace_mentions("Springfield? Yes, Springfield.", ("city",), {"city": "Springfield"},
                                  {"city": "Bath"})
    assert new == "Bath? Yes, Bath."
    assert [(s, e, f) for s, e, f in spans] == [(0, 4, "city"), (11, 15, "city")]


def test_a_value_inside_a_longer_one_or_a_word_is_left_alone():
    # "12" is inside "120" and inside the street's "12th": only the whole words are the number
    new, spans = replace_mentions("Flat 12, 120 12th Avenue", ("number", "street"),
                                  {"number": "12", "street": "12th Avenue"}, {"number": "9", "street": "Elm Row"})
    assert new == "Flat 9, 120 Elm Row"
    assert [new[s:e] for s, e, _ in spans] == ["9", "Elm Row"]


def test_a_row_without_the_value_gives_none():
    assert replace_mentions("No address here.", ("city",), {"city": "Leeds"}, {"city": "York"}) is None


_TEXT = st.text(alphabet=string.ascii_letters + " ,.", min_size=0, max_size=30)
_VALUE = st.text(alphabet=string.ascii_letters + string.digits + " -", min_size=1, max_size=12).map(str.strip).filter(bool)


@settings(max_examples=200, deadline=None)
@given(_TEXT, _TEXT, _TEXT, _VALUE, _VALUE, _VALUE, _VALUE)
def test_every_span_holds_its_new_value(a, b, c, old1, old2, new1, new2):
    text = f"{a} {old1} {b} {old2} {c}"
    replaced = replace_mentions(text, ("x", "y"), {"x": old1, "y": old2}, {"x": new1, "y": new2})
    if replaced is None:
        return   # one old value sits inside the other and has no occurrence of its own
    new, spans = replaced
    assert spans == sorted(spans)
    assert all(new[s:e] == {"x": new1, "y": new2}[f] for s, e, f in spans)
    assert {f for _, _, f in spans} == {"x", "y"}


# the compiler ---------------------------------------------------------------------------------

def errors(tmp_path, spec, files=None):
    result = compile(write(tmp_path, spec, {"letters.csv": LETTERS, **(files or {})}))
    return [(d.code, d.span.path if d.span else None, d.span.line if d.span else None, d.message)
            for d in result.diagnostics if d.severity.value == "error"]


def test_a_row_lacking_a_mention_it_would_replace_is_located(tmp_path):
    # the row is a fine seed row (a sampled field may be absent), but a block that re-samples
    # `city` has no city in its letter to replace
    rows = LETTERS + '9,Oak Lane,,delivery,"Deliver to 9 Oak Lane please."\n'
    found = errors(tmp_path, ADDRESS + "generate Address from letters { count 4 resample city }",
                   {"letters.csv": rows})
    assert [(c, p, line) for c, p, line, _ in found] == [("E0406", "letters.csv", 6)]
    assert found[0][3].startswith("row 5 of `letters.csv` has no `city`")
    assert errors(tmp_path, ADDRESS + "generate Address from letters { count 4 resample street }",
                  {"letters.csv": rows}) == []


@pytest.mark.parametrize("block,code,says", [
    ("generate Address from letterz { count 2 resample city }", "E0101", "unknown seed set `letterz`"),
    ("generate Address from letters { count 2 rewrite city }", "E0406", "`city` is sampled"),
    ("generate Address from letters { count 2 resample letter }", "E0406", "`letter` is written by the model"),
    ("generate Address { count 2 resample city }", "E0406", "belongs to a block grown from real rows"),
    ("generate Address from letters { count 2 rewrite letter resample letter }", "E0102", "listed twice"),
    ("generate Address from letters { count 2 }", "E0406", "changes nothing"),
    ('generate Address from letters { count 2 resample city prompt "x" }', "E0406", "its prompt is never sent"),
])
def test_what_cannot_grow_is_refused(tmp_path, block, code, says):
    found = errors(tmp_path, ADDRESS + block)
    assert any(c == code and says in m for c, _, _, m in found), found


def test_rewrite_of_a_quota_field_and_a_seed_set_of_another_schema_are_refused(tmp_path):
    other = 'schema Other { x: str(1..9) }\nseeds others from "o.jsonl" as Other\n'
    found = errors(tmp_path, ADDRESS + other + "generate Address from letters { count 2 quota kind { delivery: 50%, "
                   "invoice: 50% } rewrite kind }\ngenerate Address as b from others { count 2 rewrite letter }",
                   {"o.jsonl": '{"x": "a"}\n'})
    messages = [m for _, _, _, m in found]
    assert any("`kind` is a quota field" in m for m in messages), messages
    assert any("holds Other rows" in m for m in messages), messages


def test_a_cell_without_rows_is_refused_unless_its_field_is_resampled(tmp_path):
    spec = ADDRESS.replace('"delivery" | "invoice"', '"delivery" | "invoice" | "visit"')
    block = "generate Address from letters {{ count 3 quota kind {{ delivery: 1, invoice: 1, visit: 1 }} {} }}"
    found = errors(tmp_path, spec + block.format("resample city"))
    assert [c for c, *_ in found] == ["E0406"] and "kind=visit" in found[0][3]
    assert errors(tmp_path, spec + block.format("resample city, kind")) == []


def test_label_check_by_a_model_needs_a_label(tmp_path):
    found = errors(tmp_path, ADDRESS + "model m { }\ngenerate Address from letters { count 2 resample city "
                   "label check by m }")
    assert [c for c, *_ in found] == ["E0407"]


# the runtime ------------------------------------------------------------------------------------

def test_records_resampled_from_rows_keep_the_wording_and_get_exact_spans_after_noise(tmp_path):
    spec = ADDRESS + ('generate Address from letters { count 12 quota kind { delivery: 50%, invoice: 50% }\n'
                      '  resample number, street, city\n  noise letter { typo 50%, whitespace 50% } }\n'
                      'output "out" { format jsonl split train 100% }\n')
    plan, records = run(write(tmp_path, spec, {"letters.csv": LETTERS}), tmp_path / "out")
    rows = plan.seeds["letters"].rows
    assert len(records) == 12
    assert any(r["_meta"]["noise"] for r in records)
    for r in records:
        meta = r["_meta"]
        row = rows[meta["from"]["row"]]
        assert meta["from"]["seeds"] == "letters" and meta["from"]["how"] == "resampled"
        assert r["kind"] == row["kind"] == meta["cell"]["kind"]    # the label is the row's, exact
        assert meta["model"] is None
        spans = meta["spans"]["letter"]
        assert {s["field"] for s in spans} == {"number", "street", "city"}
        for s in spans:
            assert r["letter"][s["start"]:s["end"]] == r[s["field"]]
        # the row's wording stays: what lies outside the spans is the row's text outside its values
        # (before noise; without noise it is identical)
    twice = [r for r in records if r["_meta"]["from"]["row"] == 1]
    assert twice and all(sum(s["field"] == "city" for s in r["_meta"]["spans"]["letter"]) == 2 for r in twice)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["blocks"]["Address"]["origins"] == {"resampled": 12}


def test_without_noise_a_resampled_record_is_its_row_with_the_values_replaced(tmp_path):
    spec = ADDRESS + ('generate Address from letters { count 4 resample street }\n'
                      'output "out" { format jsonl split train 100% }\n')
    plan, records = run(write(tmp_path, spec, {"letters.csv": LETTERS}), tmp_path / "out")
    rows = plan.seeds["letters"].rows
    for r in records:
        row = rows[r["_meta"]["from"]["row"]]
        assert r["letter"] == row["letter"].replace(row["street"], r["street"])
        assert (r["number"], r["city"]) == (row["number"], row["city"])
    assert len({r["_meta"]["from"]["row"] for r in records}) == 4   # a cell's rows are used in turn


class Rewriter(FakeEngine):
    """Writes the rewritten field as one of two texts: on the label, or about the other one."""

    def __init__(self, on_label):
        super().__init__()
        self.on_label = on_label
        self.prompts = []

    def generate(self, requests):
        out = []
        for r in requests:
            prompt = "\n".join(m["content"] for m in r.messages)
            self.prompts.append(prompt)
            billing = "refund" in prompt or "charged" in prompt
            about_billing = billing if self.on_label else not billing
            body = ("I was charged twice on my card this month, please refund the duplicate charge now."
                    if about_billing else "The service is down, nothing loads and every page times out again.")
            out.append(GenerationResult(json.dumps({"body": body}), tokens=20))
        return out


TICKETS = '''enum Intent { billing, outage }
schema Ticket {
  subject: str(3..80)
  body: str(10..200)
  intent: Intent
}
seeds real from "t.jsonl" as Ticket
generate Ticket from real {
  count 6
  quota intent { billing: 50%, outage: 50% }
  rewrite body
  prompt """Rewrite: {{ seed.body }}"""
  EXTRA
}
output "out" { format jsonl split train 100% }
'''
ROWS = "".join(json.dumps(r) + "\n" for r in [
    {"subject": "Charged twice", "body": "I was charged twice this month, please refund one charge.", "intent": "billing"},
    {"subject": "Refund please", "body": "Please refund my last payment, the card was charged by mistake.",
     "intent": "billing"},
    {"subject": "Wrong invoice", "body": "My invoice shows the wrong amount, I was charged too much.",
     "intent": "billing"},
    {"subject": "Site down", "body": "The whole site is down, every page times out since this morning.",
     "intent": "outage"},
    {"subject": "API errors", "body": "The API returns 503 errors, the service is down for all of us.",
     "intent": "outage"},
    {"subject": "Nothing loads", "body": "Nothing loads at all, the dashboard is down and times out.",
     "intent": "outage"},
])


def test_rewritten_records_copy_the_rest_of_their_row_and_pass_the_label_check(tmp_path):
    engine = Rewriter(on_label=True)
    plan, records = run(write(tmp_path, TICKETS.replace("EXTRA", ""), {"t.jsonl": ROWS}), tmp_path / "out", engine)
    rows = plan.seeds["real"].rows
    assert len(records) == 6
    for r in records:
        row = rows[r["_meta"]["from"]["row"]]
        assert r["_meta"]["from"]["how"] == "rewritten"
        assert r["subject"] == row["subject"] and r["intent"] == row["intent"]
        assert r["body"] != row["body"]
    assert any("Rewrite: I was charged twice this month" in p for p in engine.prompts)   # seed.* in the prompt
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())["blocks"]["Ticket"]
    assert manifest["origins"] == {"rewritten": 6}
    assert manifest["label_check"]["intent"] == {"billing": {"billing": 3}, "outage": {"outage": 3}}


def test_records_that_read_as_the_other_label_are_rejected_as_off_label(tmp_path):
    from synthlang.runtime.driver import CellFailed

    with pytest.raises(CellFailed, match="off_label: intent"):
        run(write(tmp_path, TICKETS.replace("EXTRA", ""), {"t.jsonl": ROWS}), tmp_path / "out", Rewriter(on_label=False))
    journal = [json.loads(line) for line in (tmp_path / "out" / ".synth" / "journal.jsonl").read_text().splitlines()]
    read = [e["lab"]["intent"] for e in journal if "lab" in e]
    assert read and all(x["read"] != x["want"] and x["margin"] > 0 for x in read)
    assert all(e["why"] == "off_label: intent" for e in journal if "b" in e)


def test_allow_off_label_switches_the_check_off(tmp_path):
    plan, records = run(write(tmp_path, TICKETS.replace("EXTRA", "allow off_label"), {"t.jsonl": ROWS}), tmp_path / "out",
                        Rewriter(on_label=False))
    assert len(records) == 6 and plan.blocks[0].labels == ()


# the label check -------------------------------------------------------------------------------

def test_the_reader_places_clear_texts_and_leaves_unsure_ones_alone():
    rows = [json.loads(line) for line in ROWS.splitlines()]
    reader = reader_for(rows, "intent", ("body",))
    on = reader.read("Please refund me, I was charged twice on my card.", "billing")
    off = reader.read("Please refund me, I was charged twice on my card.", "outage")
    assert on is not None and not on.off and on.read == "billing"
    assert off is not None and off.off and off.read == "billing" and off.margin > reader.threshold
    unsure = reader.read("Hello, I have a question.", "outage")
    assert unsure is not None and not unsure.off
    assert reader.read("anything", "a label no row has") is None


def test_the_threshold_rejects_few_real_rows_left_out():
    rows = [(f"{w} {i} about {topic}", topic) for topic, w in (("cats", "meow purr"), ("dogs", "bark woof"),
                                                                 ("fish", "swim bubble")) for i in range(8)]
    reader = LabelReader(rows)
    assert reader.rows_scored == 24
    rejected = sum(reader.read(t, y).off for t, y in rows)
    assert rejected <= 0.05 * len(rows) + 1


def test_a_new_value_takes_the_case_of_the_value_it_replaces(tmp_path):
    spec = ('schema A {\n  street: str ~ faker("street_name")\n  city: str ~ faker("city")\n'
            '  text: str(1..200) mentions street, city\n}\nseeds rows from "rows.jsonl" as A\n'
            'generate A from rows { count 4 resample street, city }\noutput "out" { format jsonl split train 100% }\n')
    rows = (json.dumps({"street": "conniston road", "city": "west palm beach",
                        "text": "317 conniston road west palm beach fl 33458"}) + "\n"
            + json.dumps({"street": "ELM ST", "city": "Bath", "text": "12 ELM ST, Bath"}) + "\n")
    _, records = run(write(tmp_path, spec, {"rows.jsonl": rows}), tmp_path / "out")
    for r in records:
        if r["text"].startswith("317 "):
            assert r["street"] == r["street"].lower() and r["city"] == r["city"].lower()
        else:
            assert r["street"] == r["street"].upper() and r["city"] != r["city"].lower()
        for s in r["_meta"]["spans"]["text"]:
            assert r["text"][s["start"]:s["end"]] == r[s["field"]]
    assert {r["text"][:3] for r in records} == {"317", "12 "}


def test_a_hand_edited_plan_that_rewrites_a_sampled_field_is_refused_on_load(tmp_path):
    from synthlang.plan.model import Plan
    from synthlang.plan.validate_plan import validate_plan

    spec = ADDRESS + "generate Address from letters { count 2 resample street }\n"
    plan = compile(write(tmp_path, spec, {"letters.csv": LETTERS})).plan
    assert plan is not None and validate_plan(plan) == []
    data = json.loads(plan.to_json())
    data["blocks"][0]["grow"]["rewrite"] = ["city"]
    edited = Plan.load(data)
    assert any("rewrites a field the model does not write" in p or "not distinct" in p
               for p in validate_plan(edited)), validate_plan(edited)
