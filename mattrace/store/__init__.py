"""The metrics store: trace and results files indexed in DuckDB, metric views, SQL.

Trace files stay the source of truth; the store is derived from them and can always be
rebuilt by ingesting them again. Importing this package does not import duckdb (that
happens when a store is opened), so the pytest plugin can import it for free::

    from mattrace.store import Store

    with Store.open(".mattrace/mattrace.duckdb") as store:
        print(store.ingest([".mattrace/traces", ".mattrace/results"]))
        for row in store.metrics(by=("model",)):
            print(row.group, row.success, row.pass_k)
        for row in store.containment(by=("fault",)):
            print(row.group["fault"], row.faulted, row.containment)
        for row in store.governance(by=("rule",)):
            print(row.group["rule"], row.decisions, row.block)

Tables, views and every metric's definition: docs/store.md.
"""

from mattrace.store._faults import CONTAINMENT_KEYS, ContainmentRow
from mattrace.store._governance import GOVERNANCE_KEYS, GovernanceRow
from mattrace.store._grouping import GROUP_KEYS
from mattrace.store._metrics import ComplianceRow, MetricsRow, Rate
from mattrace.store._report import IngestReport
from mattrace.store._runs import RunInfo
from mattrace.store._schema import SCHEMA_VERSION
from mattrace.store._store import DEFAULT_STORE, Store, new_run_id

__all__ = [
    "ComplianceRow",
    "CONTAINMENT_KEYS",
    "ContainmentRow",
    "DEFAULT_STORE",
    "GOVERNANCE_KEYS",
    "GovernanceRow",
    "GROUP_KEYS",
    "IngestReport",
    "MetricsRow",
    "new_run_id",
    "Rate",
    "RunInfo",
    "SCHEMA_VERSION",
    "Store",
]
