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
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
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


def _time_check(steps: list[Step], reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        report = check_steps(steps, stock_contracts())
        best = min(best, time.perf_counter() - t0)
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


def part_one(sizes: list[int]) -> None:
    print(f"part 1: ten stock contracts, one pass ({platform.python_implementation()} {platform.python_version()})")
    print(f"{'steps':>9} {'steps/s':>10} {'µs/step':>8} {'vs 1k':>6} {'peak MiB':>9}")
    base: float | None = None
    for n in sizes:
        steps = list(synthetic_steps(n))
        reps = 5 if n <= 10_000 else 3 if n <= 100_000 else 1
        seconds = _time_check(steps, reps)
        del steps
        per_step = seconds / n * 1e6
        base = base or per_step
        peak = _peak_monitor_memory(n)
        mib = f"{peak / 2**20:9.2f}"
        print(f"{n:>9,} {n / seconds:>10,.0f} {per_step:>8.2f} {per_step / base:>6.2f} {mib}")


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
