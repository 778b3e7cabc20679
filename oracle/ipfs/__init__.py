"""IPFS: CIDs and their verification, the gateway fetcher, the Pinata client."""
