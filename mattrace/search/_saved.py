"""Counterexamples kept between searches, so the next search tries them first.

hypothesis's example database replays what hypothesis itself generated. A counterexample
that a probe found (and hypothesis then shrank inside that probe) is a value hypothesis
cannot file under the space's own strategy, so mattrace keeps it next to the database, as
JSON: the same search, run again after a fix, first checks that exact perturbation, and
a regression shows up in one run. Perturbations holding a fault spec are not kept (a
fault may hold a function, which JSON cannot).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mattrace.search._perturbations import (
    Combined,
    Distractor,
    Drop,
    Edit,
    Inject,
    Noise,
    Paraphrase,
    Perturbation,
    Reorder,
    Typos,
)
from mattrace.search._sites import CallSite, Point

__all__ = ["load_saved", "save"]

KEEP = 5
"""Counterexamples kept per search, newest first."""


def _point(p: Point) -> list[Any]:
    return [p.kind, p.target, p.call, p.item]


def _site(s: CallSite) -> dict[str, Any]:
    return {"kind": s.kind, "target": s.target, "call": s.call, "length": s.length,
            "numbers": [list(n) for n in s.numbers], "points": [_point(p) for p in s.points]}


def encode(p: Perturbation) -> dict[str, Any] | None:
    """JSON for ``p``, or None for a perturbation that cannot be kept."""
    match p:
        case Typos(edits):
            return {"typos": [[e.position, e.op, e.char] for e in edits]}
        case Paraphrase(template):
            return {"paraphrase": template}
        case Distractor(text, position, point):
            return {"distractor": text, "position": position, "point": _point(point) if point else None}
        case Inject(plants):
            return {"inject": [[_point(pt), text] for pt, text in plants]}
        case Reorder(site, order):
            return {"reorder": _site(site), "order": list(order)}
        case Drop(site, indices):
            return {"drop": _site(site), "indices": list(indices)}
        case Noise(site, path, factor):
            return {"noise": _site(site), "path": list(path), "factor": factor}
        case Combined(items):
            parts = [encode(i) for i in items]
            return None if any(x is None for x in parts) else {"combined": parts}
    return None


def _to_point(raw: list[Any]) -> Point:
    kind, target, call, item = raw
    return Point(str(kind), str(target), int(call), item)


def _to_site(raw: dict[str, Any]) -> CallSite:
    return CallSite(raw["kind"], raw["target"], int(raw["call"]), raw["length"],
                    tuple(tuple(n) for n in raw["numbers"]), tuple(_to_point(p) for p in raw["points"]))


def decode(raw: dict[str, Any]) -> Perturbation:
    """The perturbation :func:`encode` wrote (KeyError/TypeError/ValueError on anything else)."""
    if "typos" in raw:
        return Typos(tuple(Edit(int(pos), str(op), str(ch)) for pos, op, ch in raw["typos"]))
    if "paraphrase" in raw:
        return Paraphrase(str(raw["paraphrase"]))
    if "distractor" in raw:
        point = raw.get("point")
        return Distractor(str(raw["distractor"]), int(raw["position"]), _to_point(point) if point else None)
    if "inject" in raw:
        return Inject(tuple((_to_point(pt), str(text)) for pt, text in raw["inject"]))
    if "reorder" in raw:
        return Reorder(_to_site(raw["reorder"]), tuple(int(i) for i in raw["order"]))
    if "drop" in raw:
        return Drop(_to_site(raw["drop"]), tuple(int(i) for i in raw["indices"]))
    if "noise" in raw:
        return Noise(_to_site(raw["noise"]), tuple(raw["path"]), float(raw["factor"]))
    if "combined" in raw:
        return Combined(tuple(decode(part) for part in raw["combined"]))
    raise ValueError(f"not a saved perturbation: {sorted(raw)}")


def _file(directory: Path, key: bytes) -> Path:
    return directory / f"mattrace-{key.hex()[:32]}.json"


def load_saved(directory: Path | None, key: bytes) -> list[Perturbation]:
    """The counterexamples kept for this search (none when the file is missing or unreadable:
    a damaged cache costs a search some speed, never its answer)."""
    if directory is None:
        return []
    try:
        raw = json.loads(_file(directory, key).read_text(encoding="utf-8"))
        return [decode(item) for item in raw]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def save(directory: Path | None, key: bytes, found: Perturbation) -> None:
    """Keep ``found`` first among this search's counterexamples (atomically; failures ignored)."""
    encoded = encode(found)
    if directory is None or encoded is None:
        return
    kept = [encoded] + [encode(p) for p in load_saved(directory, key) if p != found]
    path = _file(directory, key)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps([k for k in kept if k is not None][:KEEP]), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
