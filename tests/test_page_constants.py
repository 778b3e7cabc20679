"""Constants the page shares with the contract and the API (statuses, failure reasons, the EIP-712
grant types and domain, the envelope's most recipients) are checked equal here: the page keeps its
own copies to stay a static, dependency-light bundle."""

import json
import subprocess
from pathlib import Path

from oracle.api import auth
from oracle.chain.reasons import FailureReason
from oracle.chain.registry import Status
from oracle.crypto import envelope

ROOT = Path(__file__).parents[1]
SCRIPT = """
const r = await import('./frontend/src/registry.mjs');
const a = await import('./frontend/src/api.mjs');
const e = await import('./frontend/src/envelope.mjs');
console.log(JSON.stringify({
  status: r.Status, names: r.STATUS_NAMES, reasons: Object.keys(r.FAILURE_REASONS), notTissue: r.NOT_TISSUE,
  grant: a.GRANT_TYPES, domain: a.EIP712_DOMAIN, maxRecipients: e.MAX_RECIPIENTS,
}));
"""


def test_page_constants_match_the_contract_and_the_api() -> None:
    out = subprocess.run(
        ["node", "--input-type=module", "-e", SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True
    )
    page = json.loads(out.stdout)
    assert page["status"] == {s.name.title().replace("_", ""): s.value for s in Status}
    assert len(page["names"]) == len(Status)
    assert sorted(int(k) for k in page["reasons"]) == sorted(r.value for r in FailureReason if r.value)
    assert page["notTissue"] == FailureReason.NOT_TISSUE
    assert page["grant"] == auth.GRANT_TYPES
    domain = auth.AuthConfig("d", "u", 1, "0x" + "00" * 20).eip712_domain()
    assert page["domain"] == {"name": domain["name"], "version": domain["version"]}
    assert page["maxRecipients"] == envelope.MAX_RECIPIENTS
