"""Hypothesis strategies for arbitrary valid steps and traces (JSON-able, NaN-free, NUL-free)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from mattrace.trace import VOLATILE_ATTRS, Outcome, Source, Step, StepError, StepKind, Trace

__all__ = [
    "json_objects",
    "json_values",
    "outcomes",
    "sources",
    "steps",
    "texts",
    "traces",
]

# characters that tend to break hand-rolled serialisation: line breaks (including the ones
# str.splitlines() honours but JSON does not escape), quotes, backslashes, emoji, BOM
_AWKWARD = ["\n", "\r\n", "\r", '"', "'", "\\", "\t", "😀", "👩‍💻", "\u2028", "\u2029", "\x85",
            "\ufeff", "{", "}", '","h":"', "é", "中文"]
_plain = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                 max_size=30)
texts: st.SearchStrategy[str] = st.one_of(
    _plain,
    st.lists(st.one_of(_plain, st.sampled_from(_AWKWARD)), max_size=6).map("".join),
)

_finite = st.floats(allow_nan=False, allow_infinity=False)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), _finite, texts)
json_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(texts, children, max_size=4)),
    max_leaves=8,
)
json_objects: st.SearchStrategy[dict[str, Any]] = st.dictionaries(texts, json_values, max_size=4)

sources: st.SearchStrategy[Source] = st.builds(
    Source,
    kind=st.sampled_from(["user", "agent", "tool", "retrieval", "memory"]),
    ref=st.none() | texts,
    trusted=st.booleans(),
)
outcomes: st.SearchStrategy[Outcome] = st.builds(
    Outcome,
    status=st.sampled_from(["success", "failure", "error", "timeout", "max_steps"]),
    output=json_values,
    reason=st.none() | texts,
)
_times = st.none() | st.integers(min_value=0, max_value=2**63)
_attrs = st.one_of(
    json_objects,
    # attrs that mix volatile keys (left out of fingerprints) with ordinary ones
    st.dictionaries(st.sampled_from([*sorted(VOLATILE_ATTRS), "model", "tokens"]), json_values,
                    max_size=4),
)


@st.composite
def steps(draw: st.DrawFn, index: int = 0) -> Step:
    """A valid step at ``index`` whose ``reads`` point at earlier indices only."""
    reads = draw(st.lists(st.integers(0, index - 1), unique=True, max_size=3)) if index else []
    return Step(
        index=index,
        kind=draw(st.sampled_from(list(StepKind))),
        agent=draw(st.sampled_from(["main", "user", "system", "planner"]) | texts),
        target=draw(st.none() | texts),
        content=draw(st.none() | texts),
        args=draw(st.none() | json_objects),
        result=draw(json_values),
        error=draw(st.none() | st.builds(StepError, type=texts, message=texts)),
        sources=tuple(draw(st.lists(sources, max_size=3))),
        reads=tuple(reads),
        side_effect=draw(st.booleans()),
        attrs=draw(_attrs),
        t_start=draw(_times),
        t_end=draw(_times),
    )


@st.composite
def traces(draw: st.DrawFn, min_steps: int = 0, max_steps: int = 5) -> Trace:
    """A valid trace with consecutive step indices and an Outcome or None."""
    count = draw(st.integers(min_steps, max_steps))
    return Trace(
        trace_id=draw(st.text("0123456789abcdef", min_size=1, max_size=32)),
        name=draw(texts),
        config=draw(json_objects),
        labels=draw(st.dictionaries(texts, texts, max_size=3)),
        entrypoint=draw(st.none() | json_objects),
        outcome=draw(st.none() | outcomes),
        steps=[draw(steps(index=i)) for i in range(count)],
    )
