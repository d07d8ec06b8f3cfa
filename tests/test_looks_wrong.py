"""The report's opening list of what looks wrong: each warning fires on a run that has the
problem and stays quiet on a healthy one; the manifest's rejection rates by kind of reason."""

from collections import Counter

from synthlang.report.warnings import what_looks_wrong
from synthlang.runtime.manifest import reason_kind, rejection_rates


def block(**over):
    b = {"id": "Ticket", "accepted": 40, "trimmed": 0, "rejection_rates": {"check": 0.05},
         "lengths": {"body": {"n": 40, "cap": 300, "at_cap": 1}, "subject": {"n": 40}},
         "diversity": {"body": {"sample": 40, "near_duplicate_rate": 0.0, "seed_similarity": {"copies": 0}}}}
    b.update(over)
    return b


def manifest(cells=None):
    cells = cells or [{"key": {"intent": "billing"}, "accepted": 10, "attempts": 14},
                      {"key": {"intent": "login"}, "accepted": 10, "attempts": 12},
                      {"key": {"intent": "refund"}, "accepted": 10, "attempts": 13}]
    return {"blocks": {"Ticket": {"cells": cells}}}


def test_a_healthy_run_has_nothing_to_say():
    assert what_looks_wrong([block()], manifest()) == []


def test_each_problem_is_named():
    cases = [
        (block(lengths={"body": {"n": 40, "cap": 300, "at_cap": 19}}), "are at their 300-character maximum"),
        (block(diversity={"subject": {"sample": 40, "near_duplicate_rate": 0.0,
                                      "seed_similarity": {"copies": 20}}}), "nearly copy a seed row"),
        (block(diversity={"body": {"sample": 40, "near_duplicate_rate": 0.5, "seed_similarity": None}}),
         "have a near-duplicate"),
        (block(rejection_rates={"junk": 0.45, "check": 0.05}), "`junk` rejected 45% of the attempts"),
        (block(trimmed=12), "12 records had a value cut back"),
    ]
    for b, says in cases:
        found = what_looks_wrong([b], manifest())
        assert len(found) == 1 and says in found[0], (says, found)


def test_a_class_far_below_the_others_is_named():
    cells = [{"key": {"intent": "billing"}, "accepted": 10, "attempts": 12},
             {"key": {"intent": "login"}, "accepted": 10, "attempts": 11},
             {"key": {"intent": "data_loss"}, "accepted": 10, "attempts": 60}]
    found = what_looks_wrong([block()], manifest(cells))
    assert found == ["Ticket: intent = data_loss is accepted in 17% of its attempts, against 91% for the "
                     "other values"]


def test_rejection_rates_group_reasons_by_kind():
    rejections = Counter({"junk: letter": 9, "junk: subject": 3, "check: len(body) > 3": 6,
                          "dedup: near-duplicate of Ticket/0/3": 2, "invalid_output": 1})
    assert rejection_rates(rejections, 60) == {"junk": 0.2, "check": 0.1, "dedup": 0.0333, "invalid_output": 0.0167}
    assert rejection_rates(Counter(), 0) == {}
    assert reason_kind("truncated: body") == "truncated" and reason_kind("") == "unknown"
