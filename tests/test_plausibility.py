"""Plausibility filters on hand-made records: what must be rejected, and healthy text that must
pass (long, short, with a colon, with numbers)."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthlang.compiler import compile
from synthlang.plan.json_schema import MENTION_GAP_CLASS
from synthlang.plan.model import MentionConstraint
from synthlang.regexes import sample
from synthlang.runtime import plausibility as p
from synthlang.runtime.mentions import find_spans, mention_pattern

SCHEMA = {"type": "object", "properties": {
    "subject": {"type": "string", "minLength": 8, "maxLength": 80},
    "body": {"type": "string", "minLength": 40, "maxLength": 300},
    "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "tags": {"type": "array", "items": {"type": "string", "minLength": 2, "maxLength": 16}, "maxItems": 3}}}
PROMPT = ("You write realistic, varied data for a training set. Reply with one JSON object with the keys "
          "subject: text, 8-80 characters; body: text, 40-300 characters; tags: list of up to 3 items.\n"
          "You write realistic customer support tickets for a software company. Write one email ticket about a "
          "billing problem with the web dashboard.")
SEED_SUBJECT = "Invoice shows wrong plan"


def ctx(mentioned=()):
    return p.Context(prompt=PROMPT, field_names=frozenset({"subject", "body", "code", "tags"}),
                     references={"subject": [SEED_SUBJECT], "body": ["My invoice lists the Enterprise plan but we "
                                                                     "are on Team. Please correct it."]},
                     mentioned=list(mentioned))


def record(**over):
    base = {"subject": "Charged twice for March",
            "body": "Our card was charged twice for the March renewal. Could you refund the second charge? "
                    "The order number is on the receipt we got on 3 April.",
            "code": "ABC", "tags": ["billing", "refund"]}
    base.update(over)
    return base


def verdict(rec, allow=()):
    return p.judge(rec, SCHEMA, ctx(), frozenset(allow))


@pytest.mark.parametrize("over", [
    {},
    {"body": "Login fails: the page says 'session expired' right after I enter the code from the app. "
             "Tried two browsers."},                                             # a colon in prose
    {"body": "Short but fine: the export is empty since Monday. Please check."},  # short
    {"body": "The nightly sync job stopped at 02:00 and has not resumed since. Our team in Lyon noticed it when "
             "the morning reports came out empty; the job log shows a timeout against the EU endpoint. We "
             "restarted the agent twice. Could you check whether the endpoint is up?"},   # long
    {"body": "Since the update the API returns invalid JSON for the /orders call, so our import fails. "
             "Please have a look."},                                                # JSON as a topic
    {"body": "Note: the export at https://example.com/x fails with error: timeout, since Monday morning."},
    {"body": "Order 4471203 was charged twice on 3 May. Could you refund the second charge, please?"},
    {"subject": "Refund for order 4471"},                                         # numbers in prose
    {"body": "The call `client.orders[0].refund()` raises a timeout; the list [1, 2, 3] comes back empty."},
    {"tags": ["billing"]},
])
def test_healthy_records_pass(over):
    assert verdict(record(**over)).reason is None


@pytest.mark.parametrize(("over", "reason"), [
    ({"body": "text with 40-300 characters. the csv export of our customer list is empty. 40-300 characters"},
     "echo: body"),
    ({"body": "Example body: the invoice is wrong and I would like it to be fixed as soon as possible please."},
     "echo: body"),
    ({"body": "Text: the invoice is wrong and I would like it to be fixed as soon as possible, thank you."},
     "echo: body"),
    ({"body": "You write realistic customer support tickets for a software company. Write one email ticket."},
     "echo: body"),
    ({"subject": "text"}, "hollow: subject"),
    ({"subject": "N/A"}, "hollow: subject"),
    ({"subject": "Subject"}, "hollow: subject"),
    ({"body": "1234 5678 9012 3456 7890 1234 5678 9012 3456 7890 1234 5678"}, "hollow: body"),
    ({"tags": ["title", "title", "title"]}, "repetition: tags"),
    ({"body": "SOCKET PLAY FINISHED SOCKET PLAY FINISHED SOCKET PLAY FINISHED SOCKET PLAY FINISHED now."},
     "repetition: body"),
    ({"body": "The code is 12345678901234567 and it does not work on the dashboard when I log in today."},
     "junk: body"),
    ({"body": "{4}Unauthorized response {5} {6}, I am unsure whether you are using the card for purchases."},
     "junk: body"),
    ({"body": "Please fix <%= f.name %> on the invoice page because it shows the wrong plan for us."},
     "junk: body"),
    ({"subject": "TinyBunny:3258110,tags:2,"}, "echo: subject"),
    ({"body": "Here is the JSON of a refund ticket, formatted for easy reading: the customer asks for money back."},
     "echo: body"),
    ({"body": "Please contact me at [company_name] or [account manager_email] about the duplicate charge."},
     "hollow: body"),
    ({"body": "Dear <Your Name>, the duplicate charge on the March invoice still has not been refunded to us."},
     "hollow: body"),
    ({"body": "Re: Refund for Annual Plan: we cancelled in time. Re: Refund for Annual Plan: no answer yet. "
              "Re: Refund for Annual Plan: still waiting."}, "repetition: body"),
    ({"body": "[x] Received 34 tickets by [x] 4th and none of them were answered by your team in time."},
     "junk: body"),
    ({"body": "uncaught exception: exception in `from_csv_to_list(f whenever we open the weekly export."},
     "junk: body"),
    ({"body": "The ISBN 978131518238375 is printed wrong on the invoice for our last order, please fix it."},
     "junk: body"),
    ({"subject": "Invoice shows wrong plan"}, "copies: subject"),
    ({"subject": "invoice shows the wrong plan!"}, None),  # not the same words: a paraphrase passes
    # a seed row's body kept whole inside a longer one (a rewrite that adds a few words to its source)
    ({"body": "Hello team, quick one. My invoice lists the Enterprise plan but we are on Team. Please correct "
              "it before the next renewal, thanks."}, "copies: body"),
    ({"body": "Re: my invoice lists the Enterprise plan, but we are on Team: please correct it!"}, "copies: body"),
    # a phrase shared with a seed row is not a copy, nor a short seed value (under 5 words) kept whole
    ({"body": "We moved to the Enterprise plan last week and the invoice still shows the old price for March."},
     None),
    ({"subject": "Invoice shows wrong plan since March"}, None),
])
def test_degenerate_records_are_named(over, reason):
    assert verdict(record(**over)).reason == reason


def test_a_value_at_its_cap_is_cut_back_to_a_sentence_or_word_end():
    sentence_cut = ("The dashboard stopped loading after the update on Monday. Two colleagues see a blank page "
                    "too. Clearing the cache did not help and the status page says all is well. We restarted the "
                    "browser, tried another laptop and a phone, and waited an hour. Nothing changed, and our team "
                    "cannot see any of the reports they need for the meeting")[:300]
    rec = record(body=sentence_cut)
    v = verdict(rec)
    assert v.reason is None and v.trimmed == ["body"]
    assert rec["body"].endswith("waited an hour.") and len(rec["body"]) >= 40
    words = ["".join(chr(97 + (i * 7 + j * 3) % 26) for j in range(5)) for i in range(60)]
    word_cut = "Hi " + " ".join(words)  # no sentence end, no repeated words (and no English: allow junk)
    rec = record(body=word_cut[:300])  # the cap falls inside a word, and no clause or sentence ended
    assert verdict(rec, allow=("junk",)).reason == "truncated: body"
    clauses = word_cut[:200] + ", " + word_cut[203:]
    rec = record(body=clauses[:300])   # cut back at its last clause break, which keeps over half of it
    v = verdict(rec, allow=("junk",))
    assert v.reason is None and v.trimmed == ["body"] and rec["body"] == clauses[:200]
    # two characters short of the cap, where no further token fitted: still cut back
    rec = record(body=sentence_cut[:298])
    assert verdict(rec).trimmed == ["body"] and rec["body"].endswith("waited an hour.")
    # a value that stops well before its cap is the model's own ending, cut or not
    rec = record(body=sentence_cut[:250])
    assert verdict(rec).trimmed == [] and rec["body"] == sentence_cut[:250]
    # nothing long enough before the cut: rejected
    rec = record(body="x" * 300)
    assert verdict(rec).reason == "truncated: body"
    # a value that ends a sentence at the cap is left alone
    ends = ("Fine. " * 60)[:299] + "."
    rec = record(body=ends)
    v = verdict(rec)
    assert v.trimmed == [] and rec["body"] == ends


def test_allow_switches_a_filter_off():
    assert verdict(record(subject="Invoice shows wrong plan"), allow={"copies"}).reason is None
    rec = record(body="x" * 300)
    assert verdict(rec, allow={"truncated"}).reason is None and rec["body"] == "x" * 300


def test_mentioned_values_glued_to_other_text_are_junk():
    c = ctx(mentioned=["6383 Rubio Via", "26108"])
    assert p.junk("text:1234567890123 6383 Rubio Via, Cordovaport 26108, 32.00 and more words here", c)
    assert p.junk("Please send it to 6383 Rubio Via,Cordovaport26108 by Friday, it is urgent for us.", c)
    assert not p.junk("Please send the parcel to 6383 Rubio Via, Cordovaport 26108 before Friday.", c)


def test_allow_is_in_the_plan(tmp_path):
    spec = tmp_path / "s.synth"
    spec.write_text('schema T {\n  body: str(10..100)\n}\ngenerate T {\n  count 3\n  allow truncated, copies\n}\n')
    plan = compile(spec).plan
    assert plan.blocks[0].allow == ("truncated", "copies")


@settings(max_examples=150, deadline=None)
@given(values=st.lists(st.text(alphabet="abcXYZ019 -.", min_size=1, max_size=12).map(str.strip).filter(bool),
                       min_size=1, max_size=4),
       lo=st.integers(0, 120), extra=st.integers(0, 200), seed=st.integers(0, 2**32))
def test_the_mention_constraint_never_glues_a_value_to_its_neighbours(values, lo, extra, seed):
    """Junk around mentions is prevented by construction where it can be: every text the
    decoding regex admits has a space or a bracket before each value and a space or
    punctuation after it, meets the length bounds, and gives back the values' spans."""
    mc = MentionConstraint(path=("t",), values=tuple(f"v{i}" for i in range(len(values))), min_len=lo,
                           max_len=lo + extra, gap_class=MENTION_GAP_CLASS)
    pattern = mention_pattern(mc, values)
    if pattern is None:  # too little room for the values and a separator between each two
        assert sum(map(len, values)) + len(values) - 1 > lo + extra
        return
    text = sample(pattern[1:-1], random.Random(seed))
    assert lo <= len(text) <= lo + extra
    spans = find_spans(mc, text, values)
    assert spans is not None and [text[a:b] for a, b in spans] == values
    for a, b in spans:
        assert a == 0 or text[a - 1] in " ("
        assert b == len(text) or text[b] in " ,.;:!?)"


def test_a_mentions_field_that_would_mislabel_its_text_is_rejected():
    own = ["81", "Jones Causeway", "South Kayla", "63176"]
    seeds = ["12", "Baker Street", "London", "10115", "45", "Mill Lane", "Oxford", "40221"]
    ok = "Please send the parts to 81 Jones Causeway, South Kayla 63176 before the end of the month."
    assert p.mentions_problem(ok, own, seeds, frozenset()) is None
    twice = "Send it to 81 Jones Causeway, South Kayla 63176. Again: Jones Causeway, South Kayla."
    assert p.mentions_problem(twice, own, seeds, frozenset()) == "repetition"
    leaked = "Deliveries for 45 Mill Lane, Oxford 40221 now go to 81 Jones Causeway, South Kayla 63176."
    assert p.mentions_problem(leaked, own, seeds, frozenset()) == "copies"
    assert p.mentions_problem(leaked, own, seeds, frozenset({"copies"})) is None
    # a short value inside another word or number is not an occurrence
    assert p.mentions_problem("Room 812 at 81 Jones Causeway, South Kayla 63176, floor 2.", own, seeds,
                              frozenset()) is None


def test_underscore_runs_are_junk_outside_code():
    c = ctx()
    assert p.junk("It goes to 791 Tiffany Estate, 99830_YourLastRelaxation_YourLastReminder for you.", c)
    assert not p.junk("Rename the column with `df.rename(columns={'old_name_x': 'new'})` and save the file.", c)
    assert p.mentions_problem("Send it to 99830_Your and to 99830. Thanks a lot for that.", ["99830"], [],
                              frozenset()) == "repetition"


def test_the_format_note_gives_lengths_in_words_and_nothing_to_echo():
    from synthlang.runtime.prompts import format_note

    note = format_note(SCHEMA)
    assert note == ("Write the subject in at most 11 words, the body in 8 to 42 words, each of the tags in at "
                    "most 2 words, in whole sentences.")
    assert not p.FORMAT_NOTE.search(note) and "code" not in note  # a pattern-bound string needs no budget
    nested = {"type": "object", "properties": {"review": {"type": "object", "properties": {
        "title": {"type": "string", "maxLength": 60}}}, "stars": {"type": "integer"}}}
    assert format_note(nested) == "Write the review title in at most 8 words, in whole sentences."
    assert format_note({"type": "object", "properties": {"stars": {"type": "integer"}}}) == ""


def test_a_new_sentence_cut_after_one_letter_is_truncated():
    """`... future errors. I` at the cap has a sentence end near its end, but does not end one."""
    head = ("The refund for the double charge on our March invoice has still not arrived, three weeks after your "
            "colleague confirmed it on the phone. Our finance team needs the credit note before the books close "
            "on Friday, so please send it today or tell us who to call about it. Please also explain how to "
            "prevent future errors.")
    body = (head + " I")[-300:]
    assert len(body) == 300 and body.endswith("errors. I")
    rec = record(body=body)
    v = verdict(rec)
    assert v.trimmed == ["body"] and rec["body"].endswith("prevent future errors.")


def test_the_text_after_the_mentioned_values_cut_at_its_room_is_cut_back():
    text = "Hi Sam, the parcel goes to 12 Baker Street, London 10115. Please reply to this in"
    end = text.index("10115") + 5
    tail_max = len(text) - end            # the tail used all of its room
    assert p.cut_tail(text, end, tail_max, 20) == "Hi Sam, the parcel goes to 12 Baker Street, London 10115."
    assert p.cut_tail(text, end, tail_max + 30, 20) == text        # stopped on its own, well short
    done = text[:end] + ". Thanks a lot."
    assert p.cut_tail(done, end, len(done) - end, 20) == done      # at its room, but a sentence ends
    # nothing that keeps the values and the minimum length: rejected
    assert p.cut_tail("12 Baker Street, London 10115 please reply to this in", 29, 24, 52) is None


def test_pipes_and_near_cap_endings():
    c = ctx()
    assert p.junk("Big Brother: The Lion House (2015)|BBC Music & Culture 15:00 and more news tonight.", c)
    assert not p.junk("Pipe the output through `grep error | sort` and send us what it prints, please.", c)
    headline = {"type": "object", "properties": {"headline": {"type": "string", "minLength": 10, "maxLength": 100}}}
    rec = {"headline": "Labour's four little words unveiled in a stark challenge from Tony Blair over the UK's "
                       "treatment of"}
    assert len(rec["headline"]) == 99
    # at its cap mid-phrase, with no clause break to cut back to: whatever word it stopped on is
    # a fragment's end, so it is given up
    assert p.judge(rec, headline, ctx(), frozenset()).reason == "truncated: headline"
    rec = {"headline": "Labour's four little words unveiled in a stark challenge from Tony Blair; the UK's "
                       "treatment of"}
    v = p.judge(rec, headline, ctx(), frozenset())
    assert v.trimmed == ["headline"]
    assert rec["headline"] == "Labour's four little words unveiled in a stark challenge from Tony Blair"
    rec = {"headline": "Labour's four little words unveiled in a stark challenge from Tony Blair over the UK's "
                       "treat"}
    assert len(rec["headline"]) == 92  # short of the last 5%: the model's own ending
    assert p.judge(rec, headline, ctx(), frozenset()).trimmed == []


def test_a_single_word_short_of_its_cap_is_whole():
    tags = {"type": "object", "properties": {"tags": {"type": "array", "maxItems": 2,
                                                      "items": {"type": "string", "minLength": 3, "maxLength": 12}}}}
    rec = {"tags": ["networking", "billing"]}   # 10 of 12 characters: a whole word, kept as it is
    assert p.judge(rec, tags, ctx(), frozenset()) == p.Verdict() and rec["tags"] == ["networking", "billing"]
    rec = {"tags": ["authenticati"]}            # at the cap, one word, nothing to cut back to
    assert p.judge(rec, tags, ctx(), frozenset()).reason == "truncated: tags"


def test_a_snake_case_tag_is_not_junk_on_its_own():
    assert not p.junk("password_reset_link", ctx())
    assert p.junk("Please use password_reset_link_now to reset it before Monday, thanks.", ctx())


def test_the_rejected_value_is_kept_for_the_journal():
    v = verdict(record(subject="N/A"))
    assert v.reason == "hollow: subject" and v.value == "N/A"


@pytest.mark.parametrize("text, cut", [
    ("My invoice is wrong. I was charged twice for the", "My invoice is wrong."),
    ("I was charged twice for the", "I was charged twice"),
    ("I was charged twice for the mon", "I was charged twice"),
    ("I was charged twice and ", "I was charged twice"),
])
def test_text_stopping_on_a_dangling_word_is_cut_back_past_it(text, cut):
    assert p.trim(text, 10) == cut


@pytest.mark.parametrize("text", ["Cannot log in", "Please fix this", "N/A", "The app will not turn on",
                                  "I was charged twice for the plan."])
def test_whole_endings_do_not_dangle(text):
    assert not p.dangles(text)


def test_a_text_the_model_closed_on_the_is_trimmed_not_kept():
    v = verdict(record(body="The invoice for March lists the Enterprise plan, but we pay for the"))
    assert v.reason is None and v.trimmed == ["body"]


def test_sentences_that_stop_on_a_weak_word_are_cut_back_to_the_last_whole_one():
    rec = record(body="The customer export has failed every night since Monday. Our team cannot see the reports "
                      "it needs in")
    v = verdict(rec)
    assert v.reason is None and v.trimmed == ["body"]
    assert rec["body"] == "The customer export has failed every night since Monday."
    whole = record(body="The export fails on every try since the update on Monday, and our team cannot log in")
    assert verdict(whole).trimmed == []     # one sentence that ends so is the model's own ending


def test_text_that_is_not_english_prose_or_one_long_identifier_is_junk():
    foreign = ("Lo soglio, inaglirione la responsabilita di fisica. Il client è impresa di un numero di chegarsi "
               "delle prodotte.")
    assert verdict(record(body=foreign)).reason == "junk: body"
    assert verdict(record(body=foreign), allow=("junk",)).reason is None      # another language: allow junk
    assert verdict(record(subject="SystemRuntimeSerializationMessageFormatException")).reason == "junk: subject"
    dotted = "System.Runtime.Serialization.SerializationMessageFormatException"
    assert verdict(record(subject=dotted)).reason == "junk: subject"
    glued = "System.Runtime.Serialization.Serialization.MessageFormatException:ProductName:"
    assert p.junk(glued, ctx())
    # 78 characters in a cap of 80, ending on a colon: whichever filter sees it first rejects it
    assert verdict(record(subject=glued)).reason in ("junk: subject", "truncated: subject")
    assert verdict(record(subject="A" + "b" * 77 + ":")).reason == "truncated: subject"  # no word is that long
    assert verdict(record(subject="Crash: System.IO.FileNotFoundException at login")).reason is None
    assert verdict(record(subject="Invoice for support.example.com")).reason is None
    terse = "Dashboard blank after login since Monday morning; colleagues in both offices see the same page."
    assert verdict(record(body=terse)).reason is None
    assert verdict(record(subject="Password_reset_link_expired")).reason is None
    assert verdict(record(subject="on_page_add_currency_conversion_action_data")).reason == "junk: subject"


def test_text_that_stops_on_a_comma_or_colon_was_going_on():
    rec = record(body="Your story about a chat ticket with a serious issue that required troubleshooting:")
    assert verdict(rec).reason == "truncated: body"          # nothing whole to cut back to
    rec = record(body="Your story about a chat ticket with a serious issue that required troubleshooting: ")
    assert verdict(rec).reason == "truncated: body"
    rec = record(body="The export of our customer list is empty since Monday. We tried three browsers,")
    v = verdict(rec)
    assert v.reason is None and rec["body"] == "The export of our customer list is empty since Monday."
    assert verdict(record(subject="Customer Support,")).reason == "truncated: subject"
    assert verdict(record(body="Login fails: the page says 'session expired' right after I enter the code. "
                                "Tried two browsers.")).reason is None   # a colon inside is prose


def test_a_word_glued_to_a_code_in_prose_is_junk():
    glued = ("ApostolosV603SH: Japan-made touchscreen mobile phone that once belonged to Sharp is now called "
             "the V603SH.")
    assert verdict(record(body=glued)).reason == "junk: body"
    for fine in ("My order ORD-2024-000123 never arrived, and the tracking page shows nothing since Monday.",
                 "The iPhone 15 Pro app crashes when I open the invoice tab; the Android one works fine.",
                 "Sync fails with AccessDenied in the log at C:/Users/me/AppData/Local since update 2.14.",
                 "Please reset the 2FA for account AB12CD34EF56 so I can log in again before Friday."):
        assert verdict(record(body=fine)).reason is None, fine


def test_the_system_messages_own_words_are_an_echo():
    said = "The text was given with one more explanation in two sections. This was an answer with the requested JSON."
    assert verdict(record(body=said)).reason == "echo: body"
    fine = "Our webhook posts JSON to the endpoint, but since Monday the payload has been empty every time."
    assert verdict(record(body=fine)).reason is None


def test_a_run_of_two_dozen_digits_without_spaces_is_junk():
    soup = "Untreated with 48352 2017-11-28 20:41:52.115-12-32-2202-16-2749-1983.67.1900.15.1.08.99.only, sorry."
    assert verdict(record(body=soup + " I cannot pay my bill this month.")).reason == "junk: body"
    fine = ("The request 3f2a9c1e-7b4d-4e21-9a0b-12c4d5e6f789 failed at 2024-01-05T10:00:00.123Z and again an "
            "hour later when I tried to log in.")
    assert verdict(record(body=fine)).reason is None


def test_a_value_its_cap_stopped_is_cut_at_a_clause_break_or_given_up():
    # the model was mid-phrase: any last word leaves a fragment, so only a clause break will do
    headline = "Makes your outdoor gaming amazing, drops your golf swing 100% faster, hands down, and delivers"
    assert p.trim(headline, 10, capped=True) == ("Makes your outdoor gaming amazing, drops your golf swing 100% "
                                                 "faster, hands down")
    assert p.trim("World's first: Todays-bout.com is now offering free internet for 14 days of the week with "
                  "unlimited", 10, capped=True) is None                    # the only break keeps too little
    capped = "A businessman who claimed to be a fraud has been arrested on charges of frauds on the World and was"
    assert p.trim(capped, 20, capped=True) is None
    assert p.trim("The app crashed. Then it would not start again and", 10, capped=True) == "The app crashed."
    assert p.trim("Our team cannot log in", 5, capped=True) is None
    assert not p.dangles("Our team cannot log in")                           # a whole text ending so is kept


def test_a_message_repeated_by_the_other_side_of_a_conversation_is_a_repetition():
    schema = {"type": "object", "properties": {"turns": {"type": "array", "items": {
        "type": "object", "properties": {"role": {"enum": ["user", "assistant"]},
                                         "content": {"type": "string", "minLength": 2, "maxLength": 300}}}}}}
    turns = [{"role": "user", "content": "My invoice shows the wrong address."},
             {"role": "assistant", "content": "Sorry about that. Which address should it show?"},
             {"role": "user", "content": "Sorry about that. Which address should it show?"}]
    assert p.judge({"turns": turns}, schema, ctx(), frozenset()).reason == "repetition: turns"
    fine = [*turns[:2], {"role": "user", "content": "The one in Leeds, please."}]
    assert p.judge({"turns": fine}, schema, ctx(), frozenset()).reason is None
