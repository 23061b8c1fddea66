"""Placeholder until the head's storage lands: no model has a head yet."""
from __future__ import annotations


def read_head_meta(model):
    return None
