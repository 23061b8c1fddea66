"""The arrivals queue without Qt: order, backlog, oldest age, next undecided, labels."""
from xscreen.intake.arrivals import ArrivalEntry, ArrivalQueue


def _entry(name, arrived, status="screened", alarm=False):
    return ArrivalEntry(path=f"/done/{name}", name=name, arrived=arrived, status=status, alarm=alarm, scan_rel=0.5)


def test_backlog_age_and_next_undecided_follow_decisions():
    now = [1000.0]
    q = ArrivalQueue(clock=lambda: now[0])
    for i, (name, status) in enumerate([("a", "screened"), ("b", "failed"), ("c", "screened"), ("d", "screened")]):
        q.add(_entry(name, 900.0 + 10 * i, status))
    assert q.backlog == 3  # the unreadable bag cannot be decided, so it is not backlog
    assert q.oldest_age() == 100.0 and q.next_undecided() == 0
    assert q.set_decision("/done/a", "clear") and not q.set_decision("/done/a", "clear")
    assert q.backlog == 2 and q.oldest_age() == 80.0 and q.next_undecided(0) == 2
    assert q.status_text().startswith("Backlog: 2 undecided  ·  oldest 1:20  ·  4 arrived")
    q.set_decision("/done/c", "suspect")
    q.set_decision("/done/d", "clear")
    assert q.backlog == 0 and q.oldest_age() is None and q.next_undecided() is None
    assert q.status_text().startswith("Backlog: 0 undecided")


def test_labels_say_verdict_and_decision():
    e = _entry("spool1.h5", 0.0, alarm=True)
    e.scan_rel = 1.5
    assert "spool1.h5  ALARM 1.50x" in e.label()
    e.decision = "suspect"
    assert e.label().endswith("- SUSPECT")
    assert "not screened" in _entry("x.png", 0.0, status="stored").label()
    assert "could not open" in _entry("y.h5", 0.0, status="failed").label()
