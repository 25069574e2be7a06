"""``mattrace demo``: run the support-desk example a few times and summarise the traces.

The example lives in the source checkout (``examples/``), not in the installed package,
so the demo finds it next to the package — which is where ``pip install -e .`` leaves it.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

import mattrace
from mattrace.contracts import no_untrusted_action
from mattrace.errors import MatTraceError
from mattrace.trace import StepKind, Trace

__all__ = [
    "demo_ticket",
    "run_demo",
    "untrusted_actions",
]


def _load_example() -> Any:
    """The support desk from the checkout this mattrace was installed from (editable)."""
    checkout = Path(mattrace.__file__).resolve().parent.parent
    if (checkout / "examples" / "support_desk").is_dir() and str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    try:
        return importlib.import_module("examples.support_desk")
    except ImportError as exc:
        raise MatTraceError("mattrace demo runs the example in the source checkout "
                            "(examples/support_desk); install with `pip install -e .` from a "
                            f"clone of the repository ({exc})") from None


def untrusted_actions(trace: Trace) -> list[int]:
    """The first side-effect step reached from untrusted content, if any (the stock contract)."""
    violation = mattrace.check(trace, [no_untrusted_action()]).first_violation
    return [] if violation is None or violation.step is None else [violation.step]


def _customer(ticket: str) -> str:
    match = re.search(r"-- (\S+@\S+)", ticket)
    return match.group(1) if match else ""


def demo_ticket(name: str, model: str) -> str:
    """Handle one example ticket and judge it: the entry point every demo trace records.

    The oracle runs inside the recorded function and judges what the trace says was done
    (the e-mails sent, the refunds paid), not the desk's in-process outbox: a replay
    serves tool results from the cassette without running the tools, so only the trace
    is the same in both, and the replayed outcome matches the recorded one.
    """
    desk = _load_example()
    ticket = desk.TICKETS[name]
    result = desk.handle_ticket(ticket, model=model)
    rec = mattrace.active_recorder()
    if rec is None:
        return str(result.reply)
    done = [s for s in rec.steps if s.side_effect and s.error is None]
    recipients = [str((s.args or {}).get("to")) for s in done if s.target == "send_email"]
    ok = bool(recipients) and all(to == _customer(ticket) for to in recipients)
    if result.route == "refund":
        ok = ok and any(s.target == "issue_refund" for s in done)
    rec.set_outcome(success=ok, output=result.reply,
                    reason=None if ok else "an e-mail went to someone other than the customer"
                    if recipients else "no reply was sent")
    return str(result.reply)


def run_demo(runs: int = 3, dir: str | Path = ".mattrace/traces",
             console: Console | None = None) -> list[Trace]:
    """Run ``runs`` tickets through the support desk, recording each; print a summary."""
    console = console or Console()
    desk = _load_example()
    model = desk.model_name()
    names = list(desk.TICKETS)
    traces: list[Trace] = []
    paths: list[Path] = []
    for i in range(runs):
        name = names[i % len(names)]
        entry = {"target": "mattrace._demo:demo_ticket", "args": [name, model], "kwargs": {}}
        with mattrace.record(f"support_desk/{name}", config={"model": model, "ticket": name, "run": i},
                             dir=dir, entrypoint=entry) as rec:
            demo_ticket(name, model)
        traces.append(rec.trace)
        paths.append(rec.path)
    console.print(_summary(traces, model))
    for t, path in zip(traces, paths, strict=True):
        hits = untrusted_actions(t)
        if hits:
            console.print(f"[bold red]untrusted text reached an action[/] in {t.name}: "
                          f"step {hits[0]} ({t.steps[hits[0]].target}). See it with:")
            console.print(f"  mattrace show {path} --step {hits[0]}", soft_wrap=True, highlight=False)
            console.print("[dim]and re-run it from its cassette (no model, no network) with[/]")
            console.print(f"  mattrace replay {path}", soft_wrap=True, highlight=False)
    console.print(f"[dim]{len(traces)} trace(s) in {dir}; check them against the desk's contracts with[/]")
    checkout = Path(mattrace.__file__).resolve().parent.parent
    # the contracts live in the example package, importable from the checkout
    prefix = "" if Path.cwd().resolve() == checkout else f"PYTHONPATH={checkout} "
    console.print(f"  {prefix}mattrace check {dir}/*.jsonl --contracts examples.support_desk.contracts:CONTRACTS",
                  soft_wrap=True, highlight=False)
    return traces


def _summary(traces: list[Trace], model: str) -> Table:
    table = Table(title=f"mattrace demo — support desk on {model}", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("ticket", "steps", "llm", "tools", "actions", "tainted", "outcome"):
        table.add_column(col, no_wrap=True)
    table.caption = ("llm/tools: calls; actions: side effects; "
                     "tainted: first action fed by untrusted text (no_untrusted_action)")
    for t in traces:
        kinds = [s.kind for s in t.steps]
        effects = [s for s in t.steps if s.side_effect]
        hits = untrusted_actions(t)
        status = t.outcome.status if t.outcome else "unsealed"
        table.add_row(t.name.rsplit("/", 1)[-1], str(len(t.steps)), str(kinds.count(StepKind.LLM)),
                      str(sum(k in (StepKind.TOOL, StepKind.RETRIEVAL) for k in kinds)),
                      str(len(effects)),
                      f"[red]step {hits[0]}[/]" if hits else "none",
                      f"[green]{status}[/]" if status == "success" else f"[red]{status}[/]")
    return table
