"""The daemon suites' chain, model and stack, for the distributed suite (the stores are in
tests/conftest.py)."""

from tests.oracle.conftest import chain, checkpoint, deployed_cards, stack

__all__ = ["chain", "checkpoint", "deployed_cards", "stack"]
