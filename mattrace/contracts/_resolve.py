"""Contracts named by a string, as the CLI, the pytest marker and policies take them.

``mattrace check --contracts SPEC``, ``@pytest.mark.mattrace(contracts="...")`` and a
policy's guard rule all accept either a TOML contract file or ``module:NAME`` for contracts
written in Python; :func:`resolve_contracts` is the one place that tells them apart, so
each reports a bad spec the same way.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

from mattrace._config import did_you_mean
from mattrace.contracts._contract import Contract
from mattrace.contracts._files import load_contracts
from mattrace.contracts._predicates import Pred
from mattrace.errors import ContractError

__all__ = ["resolve_contracts"]


def resolve_contracts(spec: str) -> list[Contract]:
    """Contracts from ``spec``: a TOML contract file, or ``module:NAME`` for contracts in Python.

    ``module:NAME`` imports ``module`` (it must be importable: on ``sys.path``) and takes
    its attribute ``NAME`` (dots reach further in: ``module:Suite.CONTRACTS``), which must be
    a contract or an iterable of contracts. Anything that ends in ``.toml``, or is an
    existing file, is read with :func:`load_contracts`.

    Raises:
        ContractError: the file is wrong (see :func:`load_contracts`), or the module cannot
            be imported, lacks the attribute, or the attribute holds something else; the
            message names ``spec``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ContractError(f"contracts {spec!r}: expected a .toml contract file or module:NAME")
    if spec.lower().endswith(".toml") or os.path.isfile(spec):
        return load_contracts(spec)
    module_name, colon, attr = spec.rpartition(":")
    if not colon or not module_name or not attr:
        raise ContractError(f"contracts {spec!r}: no such file, and not module:NAME; give a .toml contract "
                            "file or a module attribute holding contracts, e.g. myproject.checks:CONTRACTS")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise ContractError(f"contracts {spec!r}: no module named {missing!r}; is the directory that "
                                "holds it on sys.path (run from the project root, or set PYTHONPATH)?") from None
        raise ContractError(f"contracts {spec!r}: importing {module_name} failed: {exc}") from exc
    except Exception as exc:
        raise ContractError(f"contracts {spec!r}: importing {module_name} raised "
                            f"{type(exc).__name__}: {exc}") from exc
    value: Any = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            names = [n for n in dir(value) if not n.startswith("_")]
            raise ContractError(f"contracts {spec!r}: {module_name} has no attribute {attr!r}"
                                f"{did_you_mean(part, names)}") from None
    return _contracts_in(spec, value)


def _contracts_in(spec: str, value: Any) -> list[Contract]:
    if isinstance(value, Contract):
        return [value]
    what = f"contracts {spec!r}"
    if isinstance(value, Pred):
        raise ContractError(f"{what}: {value} is a step predicate, not a contract; wrap it, e.g. never({value})")
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ContractError(f"{what}: holds a {type(value).__name__}, not a contract or a list of contracts")
    items = list(value)
    if not items:
        raise ContractError(f"{what}: holds no contracts")
    for position, item in enumerate(items):
        if isinstance(item, Pred):
            raise ContractError(f"{what}: item {position} ({item}) is a step predicate, not a contract; "
                                f"wrap it, e.g. never({item})")
        if not isinstance(item, Contract):
            raise ContractError(f"{what}: item {position} is {item!r}, not a contract")
    return items
