"""The Message-Action Trace (MAT): the one data model every other part of mattrace reads.

A run of a multi-agent system is an ordered list of :class:`Step` s — messages between
agents, LLM calls, and actions at boundaries (tools, retrieval, memory) — plus run
metadata. Steps are immutable once recorded, so a contract verdict that names step 17
names the same thing forever.

Determinism matters more than convenience here: :func:`canonical_json` is the single
serialisation used for hashing, fingerprints and replay comparison, and
:meth:`Trace.fingerprint` deliberately ignores what differs between two faithful runs of
the same program (wall-clock times, random ids).
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

__all__ = [
    "canonical_bytes",
    "canonical_json",
    "describe_entrypoint",
    "fast_canonical_bytes",
    "float_free_canonical_bytes",
    "FLOAT_FREE_TYPES",
    "Outcome",
    "OutcomeStatus",
    "REPLAY_LABEL",
    "Source",
    "SourceKind",
    "Step",
    "StepError",
    "StepKind",
    "Trace",
    "trace_json_schema",
    "validation_summary",
    "VOLATILE_ATTRS",
    "VOLATILE_LABELS",
]


class StepKind(StrEnum):
    """What a step is: a message, an LLM call, or an action at a boundary."""

    MESSAGE = "message"
    DELEGATE = "delegate"
    LLM = "llm"
    TOOL = "tool"
    RETRIEVAL = "retrieval"
    MEMORY_READ = "memory_read"
    MEMORY_WRITE = "memory_write"
    GOVERNANCE = "governance"
    FAULT = "fault"
    END = "end"


SourceKind = Literal["user", "agent", "tool", "retrieval", "memory"]
OutcomeStatus = Literal["success", "failure", "error", "timeout", "max_steps"]

# attrs keys that differ between two faithful runs of the same program (timings, random
# ids minted by providers or OTel); the fingerprint leaves them out so replay can compare.
VOLATILE_ATTRS: frozenset[str] = frozenset(
    {"latency_ms", "response_id", "litellm_call_id", "span_id", "parent_span_id", "otel_trace_id"}
)

REPLAY_LABEL = "mattrace.replay_of"
"""The label of a run answered from a cassette alone: the id of the trace it reproduces. Such a
run repeats a recorded one and is no new evidence, so the store's metrics leave it out."""

# labels that name the session a run was recorded in (the pytest plugin's run id) or the
# trace a replay reproduces: like the trace id, they differ between two faithful runs.
VOLATILE_LABELS: frozenset[str] = frozenset({"mattrace.run", REPLAY_LABEL})


class _Frozen(BaseModel):
    # non-finite floats never turn silently into null: model_dump_json writes "NaN",
    # and canonical_json refuses them (the recorder converts them to those strings first)
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="strings")


class Source(_Frozen):
    """Where a step's content came from, and whether that origin is trusted.

    Untrusted sources (a web page, a tool result from the outside world) are what the
    taint contracts track into side effects.
    """

    kind: SourceKind
    ref: str | None = None
    trusted: bool = True


class StepError(_Frozen):
    """The exception a boundary call raised (its type name and message)."""

    type: str
    message: str


class Step(_Frozen):
    """One event of a run. Field meanings are fixed in DESIGN §2."""

    index: int = Field(ge=0)
    kind: StepKind
    agent: str = "main"
    target: str | None = None
    content: str | None = None
    args: dict[str, Any] | None = None
    result: Any = None
    error: StepError | None = None
    sources: tuple[Source, ...] = ()
    reads: tuple[int, ...] = ()
    side_effect: bool = False
    attrs: dict[str, Any] = Field(default_factory=dict)
    t_start: int | None = None
    t_end: int | None = None

    @property
    def untrusted(self) -> bool:
        """True when any source of this step's content is untrusted."""
        return any(not s.trusted for s in self.sources)

    def to_json_dict(self) -> dict[str, Any]:
        """The step as JSON-able data, leaving out fields at their defaults (compact files)."""
        return self.model_dump(mode="json", exclude_defaults=True, exclude={"index"}) | {
            "index": self.index,
            "kind": self.kind.value,
        }

    def deterministic_dict(self) -> dict[str, Any]:
        """The step without wall-clock times and volatile attrs: what replay must reproduce."""
        data = self.to_json_dict()
        data.pop("t_start", None)
        data.pop("t_end", None)
        attrs = data.get("attrs")
        if attrs:
            kept = {k: v for k, v in attrs.items() if k not in VOLATILE_ATTRS}
            if kept:
                data["attrs"] = kept
            else:
                data.pop("attrs")
        return data


class Outcome(_Frozen):
    """How a run ended, and its final output."""

    status: OutcomeStatus
    output: Any = None
    reason: str | None = None

    @property
    def success(self) -> bool:
        return self.status == "success"


class Trace(BaseModel):
    """A recorded run: metadata plus its steps in order.

    ``outcome`` is ``None`` for a run that never finished (its file was not sealed), and
    for runs imported from logs that do not say how they ended.
    """

    model_config = ConfigDict(extra="forbid")

    trace_id: str
    name: str
    config: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    entrypoint: dict[str, Any] | None = None
    outcome: Outcome | None = None
    steps: list[Step] = Field(default_factory=list)
    _incomplete: str | None = PrivateAttr(default=None)

    @property
    def incomplete(self) -> str | None:
        """Why this trace may not hold the whole run, or None when it does.

        Set by the trace file reader for a file that is unsealed or has a torn tail and
        whose last step is not the ``end`` step (the recording process died, or the file
        was cut), and by a recorder for a run that has not ended. Contracts that need the
        end of the run are ``INCOMPLETE`` on such a trace, never ``PASS``. Not part of the
        trace's data: not serialised, not in the fingerprint, kept by ``model_copy``.
        """
        return self._incomplete

    def mark_incomplete(self, reason: str | None) -> None:
        """Say why this trace may not hold the whole run (None: it does)."""
        self._incomplete = reason

    def header_dict(self) -> dict[str, Any]:
        """Run metadata without the steps (the trace file's header line)."""
        return self.model_dump(mode="json", exclude={"steps", "outcome"}, exclude_none=True)

    def fingerprint(self) -> str:
        """A sha256 over everything a faithful re-run must reproduce.

        Leaves out the trace id, wall-clock times, :data:`VOLATILE_ATTRS` and
        :data:`VOLATILE_LABELS`, so two runs of the same program under the same cassette
        (in two test sessions) have the same fingerprint.
        """
        body = {
            "name": self.name,
            "config": self.config,
            "labels": {k: v for k, v in self.labels.items() if k not in VOLATILE_LABELS},
            "outcome": self.outcome.model_dump(mode="json") if self.outcome else None,
            "steps": [s.deterministic_dict() for s in self.steps],
        }
        try:
            data = canonical_bytes(body)
        except UnicodeEncodeError:   # lone surrogates: hashed as before, each as its own bytes
            data = _json_canonical(body).encode("utf-8", "surrogatepass")
        return hashlib.sha256(data).hexdigest()

    def step(self, index: int) -> Step:
        """The step at ``index``; raises IndexError with the valid range otherwise."""
        if not 0 <= index < len(self.steps):
            raise IndexError(f"step {index} is out of range: trace has steps 0..{len(self.steps) - 1}")
        return self.steps[index]


def canonical_json(value: Any, *, ascii_only: bool = False) -> str:
    """Serialise JSON-able data the one way mattrace hashes and compares it.

    Sorted keys, no insignificant whitespace, UTF-8 kept as is (``ascii_only`` escapes it,
    for text UTF-8 cannot encode), and NaN/Infinity refused (they have no JSON form, so two
    writers would disagree on them). Python's float repr is the shortest round-tripping
    form, so floats do not drift between runs.

    The form is ``json.dumps(value, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False, allow_nan=False)``, byte for byte: :func:`canonical_bytes` computes it
    with a C encoder and falls back to ``json`` wherever the two could differ.
    """
    if ascii_only:
        return _json_canonical(value, ascii_only=True)
    out = fast_canonical_bytes(value)
    return out.decode("utf-8") if out is not None else _json_canonical(value)


_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def canonical_bytes(value: Any) -> bytes:
    """:func:`canonical_json` as UTF-8 bytes, at the speed of a C encoder (what the writers hash).

    orjson with sorted keys writes the same bytes as the canonical ``json.dumps`` for every
    string, integer, list and dict with string keys, and for floats from 1e-4 on; what it
    refuses (integers beyond 64 bits, lone surrogates, non-string keys, other types) and
    output that may hold a NaN or a small float go through ``json`` instead. So the form
    is unchanged, files and fingerprints written before read and compare the same, and the
    property test ``test_canonical_bytes_equal_json`` holds it so.

    Raises:
        ValueError: NaN or Infinity in ``value``.
        TypeError: a value JSON has no form for.
        UnicodeEncodeError: text with lone surrogates (use ``canonical_json(..., ascii_only=True)``).
    """
    out = fast_canonical_bytes(value)
    return out if out is not None else _json_canonical(value).encode("utf-8")


_TINY_FLOAT = re.compile(rb"[0-9]e-")


def fast_canonical_bytes(value: Any) -> bytes | None:
    """The canonical bytes of ``value`` from the C encoder, or None where they could differ
    from :func:`canonical_json`'s (the caller then takes the slow path it prefers).

    orjson writes NaN and Infinity as ``null`` (a parse compares the result with ``value``
    where ``null`` occurs) and floats under 1e-4 in another notation (``1e-5``, ``0.00001``).
    """
    try:
        out = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:   # orjson.JSONEncodeError is a TypeError
        return None
    if b"0.0000" in out or (b"e-" in out and _TINY_FLOAT.search(out)):
        return None
    if b"null" in out and orjson.loads(out) != value:
        return None
    return out


FLOAT_FREE_TYPES = frozenset({str, int, bool, type(None)})
"""The JSON scalars other than floats: the C encoder writes them exactly as the canonical form does."""


def float_free_canonical_bytes(value: Any) -> bytes | None:
    """The canonical bytes of ``value``, which the caller knows holds no float, straight from the
    C encoder; None where it refuses (integers beyond 64 bits, lone surrogates, non-string keys).

    Floats are the only values whose notation the two encoders write differently (and NaN
    the only one orjson writes as ``null``), so without them orjson's bytes *are*
    :func:`canonical_json`'s and :func:`fast_canonical_bytes`' scans of the output for float
    notation and ``null`` (a third of a recorded step's encoding cost) are not needed. The
    recorder and the cassette know this of the flat values most steps carry, having looked
    at every value's type to copy it.
    """
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:   # orjson.JSONEncodeError is a TypeError
        return None


def _json_canonical(value: Any, *, ascii_only: bool = False) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only,
                      allow_nan=False)


def describe_entrypoint(entrypoint: Any, limit: int = 300) -> str:
    """A trace header's entry point as one line, ``module:function(arg, key=value)`` (plus ``in the
    script PATH`` for a script's function), for a person to judge before allowing replay to run it.

    The header is data from a file, so nothing is trusted: arguments are shown as JSON with
    non-ASCII escaped, a target that is not printable text is quoted, and the line is cut at
    ``limit`` characters (with ``…``) so a hostile file cannot flood or restyle a terminal.
    """
    entry = entrypoint if isinstance(entrypoint, dict) else {"target": entrypoint}

    def shown(value: Any) -> str:
        return json.dumps(value, default=str)

    target, args, kwargs = entry.get("target"), entry.get("args") or [], entry.get("kwargs") or {}
    name = target if isinstance(target, str) and target.isprintable() and target.isascii() else shown(target)
    parts = [shown(a) for a in args] if isinstance(args, list) else [f"*{shown(args)}"]
    if isinstance(kwargs, dict):
        parts += [f"{k if isinstance(k, str) and k.isidentifier() and k.isascii() else shown(k)}={shown(v)}"
                  for k, v in kwargs.items()]
    else:
        parts.append(f"**{shown(kwargs)}")
    text = f"{name}({', '.join(parts)})"
    script = entry.get("script")
    if script is not None:   # a function of a script run as `python app.py`: the file replay would load
        text += f" in the script {script if isinstance(script, str) and script.isprintable() else shown(script)}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validation_summary(exc: ValidationError) -> str:
    """The first problem pydantic found, as ``field.path: message`` (for one-line errors)."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])


def trace_json_schema() -> dict[str, Any]:
    """The JSON Schema of a :class:`Trace` (what ``mattrace schema`` prints)."""
    return Trace.model_json_schema()
