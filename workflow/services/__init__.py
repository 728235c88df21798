"""Use cases: each takes a unit of work, the environment (clock, policy) and an actor.

A use case loads what it needs (claims locked), checks role and ownership, fires transitions
through :func:`workflow.services.common.transition`, writes audit rows, ledger entries and
outbox rows, and leaves the commit to its caller's unit of work.
"""
