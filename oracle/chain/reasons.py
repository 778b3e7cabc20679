"""Why an image could not be classified: the contract's FailureReason, value for value."""

from enum import IntEnum


class FailureReason(IntEnum):
    CONTENT_UNREACHABLE = 1
    CONTENT_MISMATCH = 2
    UNSUPPORTED_IMAGE = 3
    TOO_LARGE = 4
    MODEL_ERROR = 5
    INVALID_CID = 6
    MODEL_UNAVAILABLE = 7
