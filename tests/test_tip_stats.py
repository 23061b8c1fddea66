"""TIP statistics against a hand count: hit and false-alarm rates, Wilson intervals, log-linear d'."""
import json
import math

import pytest

from xscreen.tip.stats import d_prime, tip_stats, to_rows, wilson
from xscreen.tip.stats_out import stats_csv, stats_html, stats_table


def tip(op, category, response, row_id=None):
    return {"id": row_id, "kind": "tip", "operator": op,
            "tip": json.dumps({"fti_id": "ab" * 8, "category": category, "placement": {"cx": 1, "cy": 2},
                               "response": response, "detected": response != "clear", "overlap": None})}


def bag(op, decision, row_id=None, amends=None):
    return {"id": row_id, "kind": "bag", "operator": op, "decision": decision, "amends": amends}


def rows():
    out = [tip("ann", "knife", "suspect"), tip("ann", "knife", "clear"), tip("ann", "handgun", "unresolved"),
           tip("ann", "ied", "clear"), tip("bob", "knife", "suspect"), tip("bob", "ied", "suspect")]
    decisions = ["suspect", "suspect", "unresolved", "clear", "clear", "clear", "clear", "clear", "clear",
                 "unreadable"]
    out += [bag("ann", d, row_id=100 + k) for k, d in enumerate(decisions)]
    out += [bag("ann", "suspect", row_id=200), bag("ann", "clear", row_id=201, amends=200)]  # amended: one bag
    out += [{"id": 300, "operator": "ann", "decision": "clear", "amends": None}]  # an old row without kind
    out += [{"kind": "tip", "operator": "ann", "tip": "{not json"}]  # unreadable, left out and counted
    return out


def group(stats, op, cat):
    return next(g for g in stats.groups if g.operator == op and g.category == cat)


def test_rates_match_a_hand_count():
    s = tip_stats(rows())
    ann = group(s, "ann", "*")
    assert (ann.hit.k, ann.hit.n) == (2, 4)  # suspect + unresolved of four
    assert (ann.false_alarm.k, ann.false_alarm.n) == (3, 11)  # 2 suspect + 1 unresolved of 11 decided bags
    assert (group(s, "ann", "knife").hit.k, group(s, "ann", "knife").hit.n) == (1, 2)
    assert group(s, "ann", "knife").false_alarm == ann.false_alarm  # a category's F is its operator's
    assert (group(s, "*", "ied").hit.k, group(s, "*", "ied").hit.n) == (1, 2)
    assert (group(s, "*", "*").hit.k, group(s, "*", "*").hit.n) == (4, 6)
    assert s.skipped == 1 and any("1 row(s)" in n for n in s.notes)
    bob = group(s, "bob", "*")
    assert bob.hit.rate == 1.0 and bob.false_alarm.n == 0 and math.isnan(bob.d_prime)
    assert all("not yet a reliable measure" in g.warning for g in s.groups)


def test_wilson_interval_known_values():
    r = wilson(2, 4)
    assert r.rate == 0.5 and r.lo == pytest.approx(0.1500, abs=1e-4) and r.hi == pytest.approx(0.8500, abs=1e-4)
    r = wilson(0, 10)
    assert r.lo == 0.0 and r.hi == pytest.approx(0.2775, abs=1e-4)
    assert math.isnan(wilson(0, 0).rate)


def test_d_prime_log_linear_correction():
    assert d_prime(2, 4, 3, 9) == pytest.approx(0.3853, abs=1e-4)  # H = 2.5/5, F = 3.5/10
    perfect = d_prime(10, 10, 0, 50)  # rates of 1 and 0 stay finite
    assert perfect == pytest.approx(1.6906 + 2.3338, abs=1e-3)
    assert d_prime(10, 10, 0, 50) < d_prime(100, 100, 0, 500)  # more evidence, larger corrected d'


def test_warning_goes_away_at_100_events():
    many = [tip("cy", "knife", "suspect" if k % 5 else "clear") for k in range(100)] + [bag("cy", "clear")]
    s = tip_stats(many)
    assert group(s, "cy", "*").warning == "" and group(s, "cy", "*").hit.rate == 0.8
    assert "only 99" in tip_stats(many[1:]).groups[0].warning


def test_outputs_escape_untrusted_operator_names():
    s = tip_stats([tip("=cmd()", "knife", "suspect"), tip("<b>x</b>", "knife", "clear"), bag("<b>x</b>", "clear")])
    csv = stats_csv(s)
    assert "'=cmd()" in csv and "\n=cmd()" not in csv
    page = stats_html(s)
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    table = stats_table(s)
    assert "=cmd()" in table and "d_prime" in table
    assert {r["operator"] for r in to_rows(s)} == {"=cmd()", "<b>x</b>", "*"}
