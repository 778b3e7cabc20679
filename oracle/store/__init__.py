"""The oracle's SQLite cache: jobs with their state machine, result documents, listener checkpoints."""
