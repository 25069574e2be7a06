"""The ``@pytest.mark.mattrace(...)`` marker: its arguments, checked once at collection.

A typo in a marker (``trails=5``, a contract file with a bad rule) must fail where the
test is collected, naming the test and the file and line, not halfway through a CI run
after the expensive trials of other tests already ran.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from _mattrace_pytest import MARKER
from mattrace.contracts import Contract, Pred, contract_list, resolve_contracts
from mattrace.errors import ContractError, FaultSpecError
from mattrace.faults import FaultMatrix, FaultPlan
from mattrace.governance import Governor

__all__ = ["MARKER", "MarkerSpec", "marker_spec"]

_KEYS = ("budget", "concurrency", "config", "contracts", "faults", "governor", "ignore", "match_on", "oracle",
         "search", "trials")


class MarkerError(Exception):
    """A marker argument is wrong; the message says which test and which argument."""


@dataclass(frozen=True)
class MarkerSpec:
    """What the marker asks for (defaults when a test uses ``mat`` without a marker)."""

    contracts: tuple[Contract, ...] = ()
    trials: int = 1
    config: dict[str, Any] = field(default_factory=dict)
    oracle: Callable[[Any], Any] | None = None
    concurrency: int | None = None
    faults: tuple[Any, ...] = ()
    matrix: Any = None
    """A fault campaign (``mattrace.faults.matrix``): the test is parametrized, one case per item."""
    governor: Any = None
    search: Any = None
    """A perturbation space (``mattrace.search.P``): the test body becomes a counterexample search."""
    budget: Any = None
    """The search's :class:`mattrace.search.Budget` (None: the default, 100 runs)."""
    match_on: tuple[str, ...] | None = None
    """What replay compares to find a call's recorded answer (None: the ini's, else everything)."""
    ignore: tuple[Any, ...] = ()
    """Argument paths and ``re:`` patterns (or compiled ones) replay leaves out, on top of the ini's."""


def _whole(where: str, key: str, value: Any) -> int:
    if type(value) is not int or value < 1:
        raise MarkerError(f"{where}: {key}= must be a whole number >= 1, got {value!r}")
    return value


def _contract_file(where: str, spec: str, base: Path) -> str:
    """A contract file relative to the test file's directory, else as given (cwd, module:NAME).

    A ``.toml`` file found in neither place is refused here with both absolute paths it was
    looked for at, because "not found" alone leaves the user guessing which directory counts.
    """
    if ":" in spec and not spec.lower().endswith(".toml") and not os.path.isabs(spec):
        return spec
    near = base / spec
    if near.exists():
        return str(near)
    if spec.lower().endswith(".toml") and not os.path.exists(spec):
        if os.path.isabs(spec):
            raise MarkerError(f"{where}: contracts={spec!r}: the contract file was not found at {spec}")
        raise MarkerError(
            f"{where}: contracts={spec!r}: the contract file was not found; a relative path is resolved "
            f"against the test file's directory ({near.resolve()}) and then the working directory "
            f"({Path(spec).resolve()})")
    return spec


def _contracts(where: str, value: Any, base: Path) -> tuple[Contract, ...]:
    items: Iterable[Any] = [value] if isinstance(value, (str, os.PathLike, Contract, Pred)) else value
    if not isinstance(items, Iterable):
        raise MarkerError(f"{where}: contracts= takes contracts, a contract file path or module:NAME, "
                          f"or a list of them; got {value!r}")
    found: list[Contract] = []
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            try:
                found.extend(resolve_contracts(_contract_file(where, os.fspath(item), base)))
            except ContractError as exc:
                raise MarkerError(f"{where}: {exc}") from None
        else:
            try:
                found.extend(contract_list([item]))
            except ContractError as exc:
                raise MarkerError(f"{where}: contracts=: {exc}") from None
    try:
        return tuple(contract_list(found))
    except ContractError as exc:
        raise MarkerError(f"{where}: contracts=: {exc}") from None


def _search(where: str, kw: Mapping[str, Any], campaign: bool) -> tuple[Any, Any]:
    """The marker's ``search=`` space and ``budget=`` (a Budget or ``"runs=50,usd=1"``), checked."""
    space, budget = kw.get("search"), kw.get("budget")
    if space is None:
        if budget is not None:
            raise MarkerError(f"{where}: budget= limits a search; give search=P.(...) too")
        return None, None
    from mattrace.errors import SearchError
    from mattrace.search import Budget, Space

    if not isinstance(space, Space):
        raise MarkerError(f"{where}: search= takes a perturbation space built with mattrace.search.P "
                          f"(P.inject(...), P.typos(...) ...), got {space!r}")
    if kw.get("trials", 1) != 1 or campaign:
        raise MarkerError(f"{where}: search= runs the test body as often as its budget allows; it does not "
                          "combine with trials= or a fault campaign (faults=matrix(...))")
    if isinstance(budget, str):
        try:
            budget = Budget.parse(budget)
        except SearchError as exc:
            raise MarkerError(f"{where}: budget=: {exc}") from None
    if budget is not None and not isinstance(budget, Budget):
        raise MarkerError(f"{where}: budget= takes a mattrace.search.Budget or 'runs=50,usd=1', got {budget!r}")
    return space, budget


def _matching(where: str, kw: Mapping[str, Any]) -> tuple[tuple[str, ...] | None, tuple[Any, ...]]:
    """The marker's ``match_on=`` and ``ignore=``, checked by building the matcher they describe."""
    from mattrace.errors import RecordingError
    from mattrace.replay import Matcher

    match_on, ignore = kw.get("match_on"), kw.get("ignore", ())
    try:
        Matcher.of(match_on, ignore)
    except RecordingError as exc:
        raise MarkerError(f"{where}: {exc}") from None
    return (None if match_on is None else tuple(match_on)), tuple(ignore)


def _positional(where: str, args: tuple[Any, ...]) -> str:
    """Positional arguments by their type names: a contract's repr is a page of predicates, not a hint."""
    types = ", ".join(type(a).__name__ for a in args)
    return (f"{where} takes keyword arguments only; got {len(args)} positional argument(s): {types}; "
            f"pass contracts as contracts=[...] (it takes {', '.join(_KEYS)})")


def _unknown(where: str, unknown: list[str]) -> str:
    """Every unknown keyword with its own did-you-mean, so two typos need one fix, not two runs."""
    named = []
    for key in unknown:
        close = difflib.get_close_matches(key, _KEYS, n=1)
        named.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    noun = "argument" if len(unknown) == 1 else "arguments"
    return f"{where}: unknown {noun} {', '.join(named)}; it takes {', '.join(_KEYS)}"


def marker_spec(node: pytest.Item | Any, path: Path) -> MarkerSpec:
    """The marker's arguments on ``node`` (a test item or function definition), validated.

    Raises:
        MarkerError: an unknown or positional argument, a wrong type, or a contract file
            that does not load (its message keeps the file and line).
    """
    mark = node.get_closest_marker(MARKER)
    if mark is None:
        return MarkerSpec()
    where = f"{node.nodeid}: @pytest.mark.mattrace"
    if mark.args:
        raise MarkerError(_positional(where, mark.args))
    unknown = sorted(set(mark.kwargs) - set(_KEYS))
    if unknown:
        raise MarkerError(_unknown(where, unknown))
    kw = mark.kwargs
    config = kw.get("config", {})
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise MarkerError(f"{where}: config= must be a dict with string keys, got {config!r}")
    oracle = kw.get("oracle")
    if oracle is not None and not callable(oracle):
        raise MarkerError(f"{where}: oracle= must be a callable(run) -> bool, got {oracle!r}")
    faults = kw.get("faults", ())
    campaign = faults if isinstance(faults, FaultMatrix) else None
    try:
        plan = FaultPlan.of(faults) if faults and campaign is None else None
    except FaultSpecError as exc:
        raise MarkerError(f"{where}: faults=: {exc}") from None
    governor = kw.get("governor")
    if governor is not None and not isinstance(governor, Governor):
        raise MarkerError(f"{where}: governor= takes a mattrace.governance.Governor, got {governor!r}")
    search, budget = _search(where, kw, campaign is not None)
    match_on, ignore = _matching(where, kw)
    return MarkerSpec(
        search=search, budget=budget, match_on=match_on, ignore=ignore,
        faults=plan.faults if plan is not None else (), matrix=campaign, governor=governor,
        contracts=_contracts(where, kw.get("contracts", ()), path.parent),
        trials=_whole(where, "trials", kw.get("trials", 1)),
        config=dict(config), oracle=oracle,
        concurrency=_whole(where, "concurrency", kw["concurrency"]) if "concurrency" in kw else None)
