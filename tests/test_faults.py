"""The fault campaign (tests/fault_campaign.py), small enough for CI: SIGKILLs at random points,
damaged journal and cache, two runs at once, a prune during a run, edits between runs and a
failing server, each ending in a resume that holds exactly the uninterrupted run's records."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fault_campaign import campaign


def test_every_fault_ends_in_a_clean_resume_with_nothing_lost_duplicated_or_hung():
    figures = campaign(kills_n=2, seed=7, edit_names=("count", "quota", "prompt"))
    print(figures.line())
    assert figures.failures == [], figures.failures
    assert figures.cases >= 20 and figures.faults >= 20 and figures.records_compared >= 200
    assert (figures.lost, figures.duplicated, figures.hung) == (0, 0, 0)
