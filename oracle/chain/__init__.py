"""Everything that talks to the chain: deployment records, the registry client, listener, submitter."""
