"""Suite-wide collection rules.

tests/fork runs only through its driver (python -m tests.fork.run), which starts an upstream devnet,
deploys with scripts/deploy.py and names the deployment file in HISTOCHAIN_FORK_DEPLOYMENT.
"""

import os

collect_ignore_glob = [] if os.environ.get("HISTOCHAIN_FORK_DEPLOYMENT") else ["fork/*"]
