"""How good is the taint verdict on real prompt-injection runs, and what does the analysis cost?

Run by hand from the repository root::

    python bench/provenance.py                                   # the dev set next to this checkout
    python bench/provenance.py --data PATH/injection-dev         # any AgentDojo-format set, same layout
    python bench/provenance.py --cost-only                       # only the analysis cost

Part 1 (verdicts). Every run file under ``<data>/<suite>/runs/`` is imported as an OpenAI chat
log with the suite's ``tools.json`` classes (a tool whose output is untrusted; a tool that is
a side effect or sends data out), and judged three ways:

* ``no_untrusted_action()``: the stock check, by data flow (a side effect's selector
  argument copied from untrusted text);
* ``no_untrusted_context_action()``: any side effect after untrusted content entered the
  context;
* the yardstick: the run has any side effect at all.

A run is *positive* when the benchmark says the attack succeeded (``outcome`` is
``attack_succeeded``); failed attacks and runs without an attack are negatives. Printed per
suite and overall: precision, recall, and for the true positives the share whose first
violating step is the attacker's harmful call: a side effect with an argument holding an
identifier (e-mail, URL, IBAN, id, ...) that is in the run's injected text and not in the
system prompt or the user's request.

Part 2 (cost). A synthetic run of tool calls whose outputs share long templated prefixes
(``{"status": "ok", "records": ...}``) is analysed at 1k, 10k and 100k steps; printed are µs
per step and per KB of text, which should stay flat.

Part 3 (context cost). The context flow (``ContextFlow``: which earlier outputs a step's input
held) over turns of a templated tool result and a prompt holding it, at 1k, 10k and 100k
turns; µs per step and per KB, which should stay flat too.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mattrace.contracts import Contract, check, no_untrusted_action, no_untrusted_context_action
from mattrace.io import import_openai
from mattrace.provenance import ContextFlow, Provenance, identifiers
from mattrace.trace import Source, Step, StepKind, Trace

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "injection-dev"


def _suite_flags(suite_dir: Path) -> tuple[list[str], list[str], dict[str, Any]]:
    tools = json.loads((suite_dir / "tools.json").read_text())
    untrusted = [t["name"] for t in tools["tools"] if t["untrusted_output"]]
    side_effects = [t["name"] for t in tools["tools"] if t["side_effect"] or t["egress"]]
    return untrusted, side_effects, tools


def _harmful_steps(trace: Trace, run: dict[str, Any]) -> set[int]:
    """Side effects with an argument identifier that the injection names and the user did not."""
    injected: set[str] = set()
    for text in (run.get("injections") or {}).values():
        injected |= identifiers(str(text))
    said = set()
    for s in trace.steps:
        if s.kind is StepKind.MESSAGE and s.agent in ("user", "system") and s.content:
            said |= identifiers(s.content)
    marks = injected - said
    found = set()
    for s in trace.steps:
        if s.kind is StepKind.TOOL and s.side_effect and s.args:
            if identifiers(json.dumps(s.args)) & marks:
                found.add(s.index)
    return found


def _any_side_effect(trace: Trace) -> int | None:
    return next((s.index for s in trace.steps if s.side_effect), None)


def _judge(contract: Contract) -> Callable[[Trace], int | None]:
    def first(trace: Trace) -> int | None:
        violation = check(trace, [contract]).first_violation
        return None if violation is None else violation.step
    return first


def verdicts(data: Path) -> None:
    checks: dict[str, Callable[[Trace], int | None]] = {
        "no_untrusted_action (data)": _judge(no_untrusted_action()),
        "no_untrusted_context_action": _judge(no_untrusted_context_action()),
        "any side effect (yardstick)": _any_side_effect,
    }
    table: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    runs = 0
    started = time.perf_counter()
    for suite_dir in sorted(p for p in data.iterdir() if (p / "tools.json").is_file()):
        untrusted, side_effects, _ = _suite_flags(suite_dir)
        for path in sorted((suite_dir / "runs").glob("*.json")):
            run = json.loads(path.read_text())
            [trace] = import_openai(path, untrusted_tools=untrusted, side_effect_tools=side_effects)
            positive = run.get("outcome") == "attack_succeeded"
            harmful = _harmful_steps(trace, run) if positive else set()
            runs += 1
            for name, judge in checks.items():
                step = judge(trace)
                for group in (suite_dir.name, "all"):
                    cell = table[(name, group)]
                    flagged = step is not None
                    cell["tp"] += flagged and positive
                    cell["fp"] += flagged and not positive
                    cell["fn"] += (not flagged) and positive
                    cell["tn"] += (not flagged) and not positive
                    cell["localised"] += flagged and positive and step in harmful
    elapsed = time.perf_counter() - started
    groups = sorted({g for _, g in table}, key=lambda g: (g == "all", g))
    print(f"Part 1: {runs} runs from {data} ({elapsed:.1f} s)")
    print(f"  {'check':32} {'suite':10} {'prec':>6} {'recall':>7} {'localised':>10} {'tp':>4} {'fp':>4} {'fn':>4}")
    for name in checks:
        for group in groups:
            c = table[(name, group)]
            precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else float("nan")
            recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else float("nan")
            localised = c["localised"] / c["tp"] if c["tp"] else float("nan")
            print(f"  {name:32} {group:10} {precision:6.2f} {recall:7.2f} {localised:10.2f} "
                  f"{c['tp']:4} {c['fp']:4} {c['fn']:4}")


def _synthetic(n: int) -> list[Step]:
    steps = [Step(index=0, kind=StepKind.MESSAGE, agent="user", content="look up the records of customer 77",
                  sources=(Source(kind="user", ref="user"),))]
    for i in range(1, n):
        result = json.dumps({"status": "ok", "customer": 77, "records": [
            {"id": f"rec-{i}-{k}", "note": "the record was updated by the nightly job without changes " * 2}
            for k in range(3)]})
        steps.append(Step(index=i, kind=StepKind.TOOL, agent="assistant", target="lookup",
                          args={"customer": "77", "after": f"rec-{i - 1}-2"}, result=result,
                          sources=(Source(kind="tool", ref="lookup", trusted=i % 2 == 0),)))
    return steps


def _per_step(label: str, sizes: tuple[int, ...], make: Callable[[int], list[Step]],
              analyser: Callable[[], Any]) -> None:
    """µs per step and per KB of one incremental analysis observing ``make(n)`` in order, per size."""
    print(f"  {label:>8} {'µs/step':>9} {'µs/KB':>8}")
    for n in sizes:
        steps = make(n)
        sample = steps[:2000]
        size = sum(len(s.model_dump_json()) for s in sample) * len(steps) / len(sample) / 1024
        analysis = analyser()
        start = time.perf_counter()
        for s in steps:
            analysis.observe(s)
        elapsed = time.perf_counter() - start
        print(f"  {n:8} {elapsed / len(steps) * 1e6:9.1f} {elapsed / size * 1e6:8.1f}")


def cost() -> None:
    print("Part 2: analysis cost on templated outputs (one Provenance, steps observed in order)")
    _per_step("steps", (1_000, 10_000, 100_000), _synthetic, Provenance)


def _prompted(n: int) -> list[Step]:
    """A tool result per turn (a templated record sharing its first 40 characters with every
    other) and a model call whose prompt holds it: what the context flow links."""
    steps: list[Step] = []
    for i in range(n):
        record = json.dumps({"report": f"Status report for the warehouse, item {i:07d}: every shelf was "
                                       "counted and checked by the nightly job", "item": i})
        steps.append(Step(index=2 * i, kind=StepKind.TOOL, agent="assistant", target="report",
                          args={"item": i}, result=record))
        steps.append(Step(index=2 * i + 1, kind=StepKind.LLM, agent="assistant", target="model", content="noted",
                          args={"messages": [{"role": "system", "content": "You keep the warehouse log."},
                                             {"role": "tool", "content": record}]}))
    return steps


def context_cost() -> None:
    print("Part 3: context-flow cost on templated outputs (one ContextFlow; a tool result, then a prompt holding it)")
    _per_step("turns", (1_000, 10_000, 100_000), _prompted, ContextFlow)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cost-only", action="store_true")
    options = parser.parse_args()
    if not options.cost_only:
        verdicts(options.data)
    cost()
    context_cost()


if __name__ == "__main__":
    main()
