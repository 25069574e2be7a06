"""A longer fuzz campaign than the suite's, run by hand: stacked mutations through every reader.

``tests/test_fuzz_readers.py`` runs 200 single mutations on each test run. This script takes
the same governed run's trace, cassette and audit log, applies one to three of the same
mutations to each example, and runs ``verify`` (and, for traces, ``show``, ``show --step``,
``show --json``, ``check``, ``diff`` and both importers) in process, reporting any traceback,
any exit code outside the documented set, and any changed file that ``verify`` accepted::

    python -m tests.fuzz_campaign 0 5000        # seeds 0..4999; prints one line per problem, then a count

Two processes with different start seeds use both cores.
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

from tests.test_fuzz_readers import CONTRACTS, EXIT_CODES, _mutate, _run, record_originals


def campaign(start: int, count: int) -> int:
    """Run seeds ``start`` .. ``start + count - 1``; return how many problems were printed."""
    files = record_originals(Path(tempfile.mkdtemp(prefix="mattrace-fuzz-")))
    originals = {kind: path.read_bytes() for kind, path in files.items()}
    work = Path(tempfile.mkdtemp(prefix="mattrace-fuzz-"))
    contracts = work / "c.toml"
    contracts.write_text(CONTRACTS)
    problems = 0
    for seed in range(start, start + count):
        rnd = random.Random(seed)
        which = rnd.choice(["trace", "cassette", "audit"])
        data = originals[which]
        for _ in range(rnd.choice([1, 1, 2, 3])):
            data = _mutate(data, rnd)
        path = work / f"{seed}.{which}.jsonl"
        path.write_bytes(data)
        commands = [["verify", str(path)]]
        if which == "trace":
            commands += [["show", str(path)], ["show", str(path), "--step", "2"], ["show", str(path), "--json"],
                         ["check", str(path), "-c", str(contracts)], ["diff", str(path), str(files["trace"])],
                         ["import", "openai", str(path), "--out", str(work / "imported")],
                         ["import", "otlp", str(path), "--out", str(work / "imported")]]
        for argv in commands:
            try:
                code, err = _run(argv)
            except BaseException as exc:   # what the command let out: the finding itself
                problems += 1
                print(f"raised: seed {seed} {which} {argv[0]}: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
                continue
            if code not in EXIT_CODES or "Traceback" in err:
                problems += 1
                print(f"bad exit: seed {seed} {which} {argv}: {code} {err[-500:]}", flush=True)
            elif argv[0] == "verify" and data != originals[which] and code == 0:
                problems += 1
                print(f"accepted: seed {seed} {which}: verify passed a changed file", flush=True)
        path.unlink()
    print(f"seeds {start}..{start + count - 1}: {problems} problem(s)", flush=True)
    return problems


if __name__ == "__main__":
    sys.exit(1 if campaign(int(sys.argv[1]), int(sys.argv[2])) else 0)
