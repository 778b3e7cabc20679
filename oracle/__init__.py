"""histochain: an AI oracle that classifies pathology images registered on Ethereum."""

__version__ = "0.1.0"
