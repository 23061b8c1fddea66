"""The session report: every bag an operator reviewed, with machine and operator decisions."""
from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from xscreen.audit import Decision
from xscreen.report.context import AppMeta, utc_now
from xscreen.report.figures import boxed_thumbnail, display_rgb
from xscreen.report.html import render_session_html
from xscreen.report.summary import x_alarm
from xscreen.scan import Scan

HEADER = ["Scan id", "File", "Machine", "Top region × alarm", "Regions (alarm, attention)", "Review level × alarm",
          "Operator decision", "Operator", "Decision s"]
NO_VERDICT = ("unresolved", "unreadable")  # the operator could not judge the bag: no agreement either way
THUMB = 260


def session_html(entries: Sequence[tuple[Any, Decision | None, Scan | None]], title: str,
                 app: AppMeta | None) -> str:
    rows, thumbs = [], []
    for s, d, scan in entries:
        top = x_alarm(max((r.max_score for r in s.regions), default=None), s)
        review = x_alarm(s.threshold, s)
        rows.append([s.scan_id, s.path or "", "ALARM" if s.alarm else "NO_ALARM",
                     "-" if top is None else f"{top:.2f}",
                     f"{s.n_alarm_regions}, {len(s.regions) - s.n_alarm_regions}" if hasattr(s, "n_alarm_regions")
                     else len(s.regions), "-" if review is None else f"{review:.2f}",
                     d.decision if d else "(none)", d.operator if d else "",
                     f"{d.decision_seconds:.1f}" if d else ""])
        thumbs.append(boxed_thumbnail(display_rgb(scan), s.regions, THUMB) if scan is not None else None)
    generated = app.generated if app else utc_now()
    version = f"{app.name} {app.version}" if app else ""
    return render_session_html(title, _summary(entries, version), HEADER, rows, thumbs, generated)


def _summary(entries: Sequence[tuple[Any, Decision | None, Scan | None]],
             version: str) -> list[tuple[str, str]]:
    decided = [(s, d) for s, d, _ in entries if d is not None]
    counts = Counter(d.decision for _, d in decided)
    # Agreement: operator suspect on machine alarms and clear on machine no-alarms.
    agree = sum((d.decision == "suspect") == bool(s.alarm) for s, d in decided if d.decision not in NO_VERDICT)
    judged = sum(d.decision not in NO_VERDICT for _, d in decided)
    return [("Bags", str(len(entries))),
            ("Machine alarms", str(sum(bool(s.alarm) for s, _, _ in entries))),
            ("Decisions", ", ".join(f"{k} {counts.get(k, 0)}" for k in ("clear", "suspect", "unresolved", "unreadable"))),
            ("Operators", ", ".join(sorted({d.operator for _, d in decided})) or "-"),
            ("Operator agrees with machine", f"{agree} of {judged}" if judged else "-"),
            ("Application", version)]
