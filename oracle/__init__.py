"""histochain: an AI oracle that classifies pathology images registered on Ethereum."""

from pathlib import Path

__version__ = "0.1.0"

# The checkout the package runs from (an editable install): contracts, tools and node_modules live here.
REPO_ROOT = Path(__file__).resolve().parents[1]
