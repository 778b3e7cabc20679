"""The query API over the oracle's SQLite cache (aiohttp)."""
