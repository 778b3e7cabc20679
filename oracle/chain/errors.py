"""What goes wrong on the chain side."""

from oracle.errors import HistochainError


class ChainError(HistochainError):
    """The RPC endpoint or the chain did not answer as expected."""
