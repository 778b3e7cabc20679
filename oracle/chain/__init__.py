"""Everything that talks to the chain: deployment records, the registry client, listener, submitter."""

from oracle.chain import web3_lock

web3_lock.apply()
