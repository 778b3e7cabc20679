"""One base class, so callers can catch everything the project raises on purpose."""


class HistochainError(Exception):
    """Base of every error histochain raises deliberately; its message is meant for the user."""


class ConfigError(HistochainError):
    """Configuration is missing or invalid."""


class ToolchainError(HistochainError):
    """A required external tool (anvil, node, solc stand-in) is missing or broken."""
