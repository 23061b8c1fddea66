"""Lane intake (no Qt): bags arriving in an inbox folder or over the DICOS/DICOM network.

``Inbox`` (inbox.py) finds complete bags by the rules in rules.py and keeps a done folder keyed by
content; ``run_lane`` (lane.py) screens them through ``pipeline.screen_paths``; ``Receiver``
(receiver.py) is the C-ECHO / C-STORE service that writes received objects into an inbox.
"""
from xscreen.intake.inbox import Arrival, Inbox, IntakeError, Record
from xscreen.intake.lane import IntakeIdle, IntakeResult, load_scorers, run_lane, screen_arrival
from xscreen.intake.rules import Rules

__all__ = ["Arrival", "Inbox", "IntakeError", "IntakeIdle", "IntakeResult", "Record", "Rules", "load_scorers",
           "run_lane", "screen_arrival"]
