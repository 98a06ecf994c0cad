"""An object as the API server stores it, for comparing what we apply with what we read back.

A Secret's `stringData` is a write-only convenience: the server merges it into `data` (base64) and never
returns it. Compared as written, every Secret with `stringData` would look changed on every read — rewritten
on every deploy, reported as drift forever. Compared as stored, it is what the server holds.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any


def as_stored(obj: Mapping[str, Any]) -> dict[str, Any]:
    """`obj` as the server would return it (a Secret's stringData folded into data); others unchanged."""
    if obj.get("kind") != "Secret" or obj.get("apiVersion") != "v1" or not obj.get("stringData"):
        return dict(obj)
    stored = {k: v for k, v in obj.items() if k != "stringData"}
    data = dict(obj.get("data") or {})
    for key, value in (obj.get("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()  # stringData wins, as on the server
    stored["data"] = data
    return stored
