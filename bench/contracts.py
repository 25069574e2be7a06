"""How fast do contracts check, and does the cost per step stay flat as runs grow?

Run by hand from the repository root::

    python bench/contracts.py                    # 1k .. 1M steps, then the invariant-ai comparison
    python bench/contracts.py --quick            # 1k .. 100k steps, a rough look
    python bench/contracts.py --invariant-python /tmp/invvenv/bin/python   # with the baseline

Part 1 checks ten stock contracts (every stock contract, plus an argument check and a
role check written with the DSL) over synthetic multi-agent traces of 1k, 10k, 100k and 1M
steps, in one pass, and prints steps checked per second and µs per step, with the ratio of
each size's cost per step to the 1k cost (flat means ~1.0). The traces are built so that
no contract settles early (a settled monitor stops being fed, which would flatter the
figures): every e-mail is confirmed, every claim cited, untrusted text never reaches an
action. Peak memory of the monitors is measured separately, on the same steps generated
lazily so that the trace itself is not counted.

Part 2 checks the three policies of ``bench/invariant_baseline.py`` (an argument check on
``send_email``, ``get_inbox`` followed later by ``send_email``, a pattern in tool output)
on the same OpenAI-format messages with mattrace (imported with ``trace_from_messages``,
import time reported apart) and, given ``--invariant-python`` pointing at a Python with
``invariant-ai`` installed, with Invariant's analyzer run locally and offline in that
interpreter; figures are seconds per check and the ratio invariant / mattrace.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import re
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mattrace.contracts import (
    Contract,
    Pred,
    always,
    check_steps,
    claims_supported,
    confirmed_before,
    max_calls,
    never,
    no_action_after_error,
    no_unsupported_propagation,
    no_untrusted_action,
    once,
    stays_in_role,
    step,
    terminates,
)
from mattrace.contracts._dataflow import SELECTOR_NAMES
from mattrace.provenance import ANALYSED_KINDS, Provenance, ValueOrigin, identifiers
from mattrace.trace import Source, Step, StepError, StepKind

_DOCS = 50          # a pool of documents the researcher retrieves from (the claims index stays bounded)
_TURN = 12          # steps per synthetic turn


def stock_contracts() -> list[Contract]:
    """The ten contracts part 1 checks."""
    return [
        terminates(max_steps=10**8),
        no_untrusted_action(),
        stays_in_role({"researcher": ["search_web"], "writer": ["send_email"]}),
        confirmed_before("send_email"),
        no_action_after_error(),
        max_calls("search_web", 10**8),
        claims_supported(),
        no_unsupported_propagation(),
        never(step.tool("send_email") & step.arg("to").not_matches(r"@ourco\.com$")).named("internal mail only"),
        always(step.kind("llm") >> step.agent({"planner", "researcher", "writer"})).named("known llm callers"),
    ]


def synthetic_steps(n: int) -> Iterator[Step]:
    """A planner/researcher/writer run of ``n`` steps, in turns of twelve steps, then ``end``."""
    i = 0
    turn = 0
    while i < n - 1:
        b = i
        doc_id = f"kb-{turn % _DOCS}"
        noisy = turn % 97 == 13        # now and then a failed search, retried
        untrusted = turn % 89 == 7     # now and then an untrusted page nobody acts on
        specs: list[dict] = [
            dict(kind=StepKind.MESSAGE, agent="user", target="planner", content=f"Summarise topic {turn}",
                 sources=(Source(kind="user"),)),
            dict(kind=StepKind.LLM, agent="planner", target="gpt", content="delegate to researcher", reads=(b,),
                 attrs={"model": "gpt", "tokens": {"total": 120}}),
            dict(kind=StepKind.DELEGATE, agent="planner", target="researcher", content=f"research topic {turn}",
                 reads=(b + 1,)),
            dict(kind=StepKind.TOOL, agent="researcher", target="search_web", args={"q": f"topic {turn}"},
                 error=StepError(type="TimeoutError", message="slow") if noisy else None,
                 result=None if noisy else "ok", reads=(b + 2,)),
            dict(kind=StepKind.RETRIEVAL, agent="researcher", target="search_web", args={"query": f"topic {turn}"},
                 result=[{"id": doc_id, "text": f"Topic {turn % _DOCS} grew 12% in 2024.", "trusted": not untrusted}],
                 sources=(Source(kind="retrieval", ref=doc_id, trusted=not untrusted),), reads=(b + 2,)),
            dict(kind=StepKind.TOOL, agent="researcher", target="search_web", args={"q": f"topic {turn} again"},
                 result="ok", reads=(b + 2,)),
            dict(kind=StepKind.LLM, agent="researcher", target="gpt", content=f"Topic grew 12% [{doc_id}]",
                 reads=(b + 5,) if untrusted else (b + 4, b + 5), attrs={"model": "gpt", "tokens": {"total": 300}}),
            dict(kind=StepKind.MESSAGE, agent="researcher", target="writer", content="Topic grew 12% in 2024.",
                 attrs={"claims": [{"text": "Topic grew 12% in 2024.", "cites": [doc_id]}]}, reads=(b + 6,)),
            dict(kind=StepKind.LLM, agent="writer", target="gpt", content="Draft: topic grew 12% in 2024.",
                 reads=(b + 7,), attrs={"model": "gpt", "tokens": {"total": 250}}),
            dict(kind=StepKind.MESSAGE, agent="writer", target="user", content="Shall I send the summary?",
                 reads=(b + 8,)),
            dict(kind=StepKind.MESSAGE, agent="user", target="writer", content="Yes, send it.",
                 sources=(Source(kind="user"),), reads=(b + 9,)),
            dict(kind=StepKind.TOOL, agent="writer", target="send_email", side_effect=True, result="sent",
                 args={"to": "team@ourco.com", "body": "Topic grew 12% in 2024."}, reads=(b + 8, b + 10)),
        ]
        for spec in specs:
            if i >= n - 1:
                break
            yield Step(index=i, **spec)
            i += 1
        turn += 1
    yield Step(index=i, kind=StepKind.END, result={"status": "success"})


# -- the same ten rules, written by hand --------------------------------------------------------

_YES = re.compile(r"\byes\b", re.IGNORECASE)
_INTERNAL = re.compile(r"@ourco\.com$")
_CLAIM_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CLAIM_WORD = re.compile(r"[a-z0-9]+")
_ROLES = {"researcher": frozenset({"search_web"}), "writer": frozenset({"send_email"})}
_LLM_CALLERS = frozenset({"planner", "researcher", "writer"})
_CALLS = frozenset({StepKind.TOOL, StepKind.RETRIEVAL, StepKind.LLM, StepKind.MEMORY_READ, StepKind.MEMORY_WRITE})


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _CLAIM_NUMBER.findall(text)}


def _overlaps(claim_words: frozenset[str], words: frozenset[str]) -> bool:
    return bool(claim_words) and len(claim_words & words) / len(claim_words) >= 0.8


def _selector_from_untrusted(values: tuple[ValueOrigin, ...]) -> bool:
    """``no_untrusted_action``'s rule on one side effect: a selector argument (by name, or a
    value that is an identifier) whose untrusted-only part was found in untrusted text."""
    for value in values:
        if value.trust not in ("untrusted", "mixed") or not value.instructed:
            continue
        name = re.split(r"[.\[]", value.path.rsplit(".", 1)[-1], maxsplit=1)[0]
        if SELECTOR_NAMES.match(name):
            return True
        strong = [t for t in identifiers(value.value) if t.startswith(("email:", "url:", "account:", "phone:"))]
        if strong and len(value.value.strip()) <= 2 + max(len(t.split(":", 1)[1]) for t in strong) + 12:
            return True
    return False


def hand_written(steps: Iterable[Step], provenance: bool = True) -> dict[str, int | None]:
    """The ten rules of :func:`stock_contracts` in one loop, as one would write them without
    mattrace: the first violating step of each (None: it holds). ``no_untrusted_action`` asks
    the same provenance analysis (:class:`mattrace.provenance.Provenance`) mattrace does: it
    is an analysis, not a rule, and writing it again would measure a different analysis; with
    ``provenance=False`` that rule is left out (nine rules)."""
    first: dict[str, int | None] = dict.fromkeys(
        ("terminates", "no untrusted action", "stays in role", "confirmed before send_email",
         "no action after error", "at most 100000000 search_web calls", "claims supported",
         "no unsupported propagation", "internal mail only", "known llm callers"))
    if not provenance:
        del first["no untrusted action"]
    analysis = Provenance() if provenance else None
    count = searches = 0
    ended = confirmed = False
    failed_calls: dict[str | None, int] = {}
    docs: dict[str, str] = {}
    unsupported: list[tuple[str, frozenset[str], set[str]]] = []
    last = None

    def fail(rule: str, index: int) -> None:
        if first[rule] is None:
            first[rule] = index

    for s in steps:
        i, kind, agent = s.index, s.kind, s.agent
        last = i
        if kind is StepKind.END:
            status = s.result.get("status") if isinstance(s.result, dict) else None
            if status in ("timeout", "max_steps"):
                fail("terminates", i)
            else:
                ended = True
        else:
            count += 1
            if count > 10**8:
                fail("terminates", i)
        if analysis is not None and s.kind in ANALYSED_KINDS:
            values = analysis.values(s, only_untrusted=True)   # the same call the contract makes
            if s.side_effect and _selector_from_untrusted(values):
                fail("no untrusted action", i)
        if kind in (StepKind.TOOL, StepKind.RETRIEVAL) and agent in _ROLES and s.target not in _ROLES[agent]:
            fail("stays in role", i)
        if kind is StepKind.MESSAGE:
            if agent == "user" and s.content is not None and _YES.search(s.content):
                confirmed = True
            elif agent != "user":
                confirmed = False
        elif kind is StepKind.TOOL and s.target == "send_email":
            if not confirmed:
                fail("confirmed before send_email", i)
            to = (s.args or {}).get("to")
            if to is not None and not _INTERNAL.search(to if isinstance(to, str) else json.dumps(to)):
                fail("internal mail only", i)
        if s.side_effect and failed_calls:
            fail("no action after error", i)
        elif kind in _CALLS:
            if s.error is not None:
                failed_calls.setdefault(s.target, i)
            else:
                failed_calls.pop(s.target, None)
        if kind is StepKind.TOOL and s.target == "search_web":
            searches += 1
            if searches > 10**8:
                fail("at most 100000000 search_web calls", i)
        if kind is StepKind.RETRIEVAL and isinstance(s.result, list):
            for doc in s.result:
                if isinstance(doc, dict) and "id" in doc:
                    docs.setdefault(str(doc["id"]), str(doc.get("text", "")))
        elif kind is StepKind.MESSAGE or kind is StepKind.DELEGATE:
            claims = s.attrs.get("claims") or [] if kind is StepKind.MESSAGE else []
            backed = []
            for claim in claims:
                cited = [docs[str(c)] for c in claim.get("cites") or () if str(c) in docs]
                ok = bool(cited) and _numbers(claim["text"]) <= _numbers(" ".join(cited))
                backed.append(ok)
                if not ok:
                    fail("claims supported", i)
            if s.content and unsupported:
                words = frozenset(_CLAIM_WORD.findall(s.content.lower()))
                said = _numbers(s.content)
                vouched = [frozenset(_CLAIM_WORD.findall(c["text"].lower()))
                           for c, ok in zip(claims, backed, strict=True) if ok]
                for who, claim_words, claim_numbers in unsupported:
                    if who != agent and _overlaps(claim_words, words) and claim_numbers <= said \
                            and not any(_overlaps(claim_words, w) for w in vouched):
                        fail("no unsupported propagation", i)
            if s.content:
                unsupported += [(agent, frozenset(_CLAIM_WORD.findall(c["text"].lower())), _numbers(c["text"]))
                                for c, ok in zip(claims, backed, strict=True) if not ok]
        if kind is StepKind.LLM and agent not in _LLM_CALLERS:
            fail("known llm callers", i)
    if not ended:
        fail("terminates", last if last is not None else -1)
    return first


def _time_check(steps: list[Step], reps: int, nine: bool = False) -> float:
    """Best seconds of CPU (this process's: the machines are shared) for one check."""
    best = float("inf")
    for _ in range(reps):
        gc.collect()
        contracts = stock_contracts()
        if nine:
            contracts = [c for c in contracts if c.name != "no untrusted action"]
        t0 = time.process_time()
        report = check_steps(steps, contracts)
        best = min(best, time.process_time() - t0)
        if not report.ok:
            raise SystemExit(f"bench trace unexpectedly violates: {report.first_violation}")
    return best


def _peak_monitor_memory(n: int) -> int:
    """Peak bytes allocated while checking ``n`` lazily generated steps (the trace is not held)."""
    gc.collect()
    tracemalloc.start()
    check_steps(synthetic_steps(n), stock_contracts())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def _time_hand_written(steps: list[Step], reps: int, provenance: bool) -> float:
    best = float("inf")
    for _ in range(reps):
        gc.collect()
        t0 = time.process_time()
        found = hand_written(steps, provenance)
        best = min(best, time.process_time() - t0)
        if any(v is not None for v in found.values()):
            raise SystemExit(f"bench trace unexpectedly violates a hand-written rule: {found}")
    return best


HAND_WRITTEN_TARGET = 3.0
"""mattrace's check may take at most this many times the hand-written single pass."""


def part_one(sizes: list[int]) -> None:
    print(f"part 1: ten stock contracts, one pass ({platform.python_implementation()} {platform.python_version()})")
    print("  hand: the same rules in one hand-written loop (10: with the provenance analysis the")
    print("  data-flow rule asks; 9: without that rule and its analysis); x = mattrace / hand-written")
    print(f"{'steps':>9} {'steps/s':>10} {'µs/step':>8} {'vs 1k':>6} {'peak MiB':>9} "
          f"{'hand 10':>8} {'x':>5} {'hand 9':>7} {'µs (9)':>7} {'x':>5}")
    base: float | None = None
    for n in sizes:
        steps = list(synthetic_steps(n))
        reps = 5 if n <= 10_000 else 3 if n <= 100_000 else 1
        seconds = _time_check(steps, reps)
        by_hand = _time_hand_written(steps, reps, provenance=True)
        nine = _time_check(steps, reps, nine=True)
        nine_by_hand = _time_hand_written(steps, reps, provenance=False)
        del steps
        per_step = seconds / n * 1e6
        base = base or per_step
        peak = _peak_monitor_memory(n)
        mib = f"{peak / 2**20:9.2f}"
        print(f"{n:>9,} {n / seconds:>10,.0f} {per_step:>8.2f} {per_step / base:>6.2f} {mib} "
              f"{by_hand / n * 1e6:>8.2f} {seconds / by_hand:>5.2f} {nine_by_hand / n * 1e6:>7.2f} "
              f"{nine / n * 1e6:>7.2f} {nine / nine_by_hand:>5.2f}")
    print(f"  target: mattrace within {HAND_WRITTEN_TARGET:g}x of the hand-written pass")


# -- part 2: the invariant-ai comparison ----------------------------------------------------


def mattrace_policies() -> dict[str, Pred]:
    """The three baseline policies as the step predicates of ``never(...)`` contracts."""
    return {
        "external_recipient": step.tool("send_email") & step.arg("to").not_matches(r"@ourco\.com$"),
        "inbox_then_send": step.tool("send_email") & once(step.tool("get_inbox")),
        "injection_in_output": step.kind("tool") & step.result.matches(r"(?i)ignore (all )?previous instructions"),
    }


def _best(fn: Callable[[], int], reps: int = 3) -> tuple[float, int]:
    best, value = float("inf"), 0
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def part_two(sizes: list[int], invariant_python: str | None, budget: float) -> None:
    import invariant_baseline as baseline

    from mattrace.io.openai_chat import trace_from_messages

    print("\npart 2: three policies on the same OpenAI-format messages (seconds, best of 3)")
    print("  first: mattrace.check, which stops at the first violation; all: every violating step found")
    header = f"{'messages':>9} {'policy':<20} {'import':>7} {'first':>8} {'all':>8} {'found':>6}"
    if invariant_python:
        header += f" {'invariant':>10} {'found':>6} {'x (all)':>9}"
    print(header)
    for n in sizes:
        messages = baseline.make_messages(n, seed=0)
        t0 = time.perf_counter()
        trace = trace_from_messages(messages, name=f"bench-{n}", side_effect_tools=["send_email"])
        import_s = time.perf_counter() - t0
        theirs = _run_invariant(invariant_python, n, budget) if invariant_python else {}
        for name, pred in mattrace_policies().items():
            contract = never(pred).named(name)
            steps = trace.steps
            first_s, _ = _best(lambda c=contract, st=steps: int(not check_steps(st, [c]).ok))

            def sweep(p: Pred = pred, st: list[Step] = steps) -> int:
                ev = p.bind()
                return sum(1 for s in st if ev(s))

            all_s, found = _best(sweep)
            line = f"{n:>9,} {name:<20} {import_s:>7.4f} {first_s:>8.5f} {all_s:>8.5f} {found:>6}"
            if invariant_python:
                seconds, errors = theirs.get(name, (None, None))
                line += (f" {seconds:>10.3f} {errors:>6} {seconds / all_s:>9,.0f}" if seconds is not None
                         else f" {'> ' + format(budget, '.0f') + ' s':>10} {'—':>6} {'—':>9}")
            print(line)
    if invariant_python:
        print("  invariant counts every (get_inbox, later send_email) pair; "
              "mattrace every send_email after a get_inbox")


def _run_invariant(python: str, n: int, budget: float) -> dict[str, tuple[float, int]]:
    """Each policy in a fresh child of ``python`` (median of its repetitions), within ``budget`` seconds."""
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "import invariant_baseline as b\n"
        "out = {}\n"
        "for name in b.POLICIES:\n"
        f"    r = b._run_child(name, {n}, 0, False, {budget})\n"
        "    if r is not None:\n"
        "        out[name] = [r['seconds'], r['errors']]\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True,
                          timeout=budget * 4 + 120)
    return {name: (row[0], row[1]) for name, row in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k..100k steps only")
    parser.add_argument("--invariant-python", metavar="PYTHON",
                        help="a Python with invariant-ai installed, for the baseline")
    parser.add_argument("--budget", type=float, default=120.0,
                        help="seconds invariant may take per policy and size (default 120)")
    parser.add_argument("--skip-scaling", action="store_true", help="only part 2")
    args = parser.parse_args()
    if not args.skip_scaling:
        part_one([1_000, 10_000, 100_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000])
    part_two([100, 1_000, 10_000], args.invariant_python, args.budget)


if __name__ == "__main__":
    main()
