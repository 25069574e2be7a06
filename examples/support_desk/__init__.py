"""The support desk's test suites: contracts, faults, search and governance finding its
planted weaknesses.

The desk itself (agents, tools, script, contracts, governor) ships inside the package as
:mod:`mattrace.apps.demo.support_desk`, so ``mattrace demo`` runs from any install; these
suites test that one copy, as a user's suite would test their own orchestrator.
"""
