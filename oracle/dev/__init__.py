"""The local development stack: processes the `histochain dev` verbs start and stop."""
