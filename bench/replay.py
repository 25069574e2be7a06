"""How much faster is a replay than the live run it reproduces?

Run by hand from the repository root::

    python bench/replay.py            # both scenarios, best of 3
    python bench/replay.py --reps 1

Live LLM and service calls spend their time waiting on the network; a replay answers
each from the cassette. Two scenarios, each recorded live and then replayed in ``none``
mode from its cassette, with the fingerprints checked equal:

* **services**: 40 tool calls, each with 25 ms of simulated latency, across 4 agents;
* **support desk**: the example orchestrator (``mattrace.apps.demo.support_desk``) with 150 ms of
  simulated latency added to every scripted-model call (a fast hosted model's response
  time), 3 tickets.

Figures are ratios measured in the same run (live seconds / replay seconds), because the
machines this runs on are shared and noisy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mattrace
from mattrace.trace import Trace

SERVICE_LATENCY = 0.025
LLM_LATENCY = 0.150


def services(tmp: Path, tape: Path, mode: str) -> Trace:
    @mattrace.tool(name="service")
    def service(agent: int, i: int) -> dict[str, int]:
        time.sleep(SERVICE_LATENCY)
        return {"agent": agent, "i": i, "value": (agent * 7919 + i * 104729) % 1000}

    with mattrace.record("services", dir=tmp, cassette=tape, record_mode=mode) as rec:
        for agent in range(4):
            with mattrace.agent(f"agent{agent}"):
                for i in range(10):
                    service(agent, i)
    return rec.trace


def support_desk(tmp: Path, tape: Path, mode: str) -> Trace:
    from mattrace.apps.demo.support_desk import TICKETS, handle_ticket

    with mattrace.record("desk", dir=tmp, cassette=tape, record_mode=mode) as rec:
        for ticket in TICKETS.values():
            handle_ticket(ticket)
    return rec.trace


def slow_model() -> None:
    """Add simulated latency to every scripted-model call (live runs only reach it)."""
    from mattrace.testing.provider import ScriptedLLM

    original = ScriptedLLM.completion

    def completion(self: ScriptedLLM, *args: object, **kwargs: object) -> object:
        time.sleep(LLM_LATENCY)
        return original(self, *args, **kwargs)

    ScriptedLLM.completion = completion  # type: ignore[method-assign]


def best(scenario: Callable[[Path, Path, str], Trace], tmp: Path, tape: Path, mode: str,
         reps: int) -> tuple[float, Trace]:
    times, trace = [], None
    for _ in range(reps):
        start = time.perf_counter()
        trace = scenario(tmp, tape, mode)
        times.append(time.perf_counter() - start)
    assert trace is not None
    return min(times), trace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    import litellm  # noqa: F401  (imported up front: its import time is not the run's)

    from mattrace.apps.demo.support_desk.app import model_name

    model_name()   # registers the scripted model
    slow_model()
    print(f"mattrace replay benchmark: Python {sys.version.split()[0]}, best of {args.reps}")
    print(f"{'scenario':<16}{'steps':>7}{'live s':>10}{'replay s':>11}{'ratio':>9}  identical")
    for name, scenario in (("services", services), ("support desk", support_desk)):
        with tempfile.TemporaryDirectory() as tmp:
            tape = Path(tmp) / f"{name}.cassette"
            live_s, live = best(scenario, Path(tmp), tape, "all", args.reps)
            replay_s, replayed = best(scenario, Path(tmp), tape, "none", args.reps)
        same = live.fingerprint() == replayed.fingerprint()
        print(f"{name:<16}{len(live.steps):>7}{live_s:>10.3f}{replay_s:>11.4f}{live_s / replay_s:>8.0f}x  {same}")


if __name__ == "__main__":
    main()
