"""Why an image could not be classified: the contract's FailureReason (contracts/IImageRegistry.sol),
value for value; tests check this copy and the page's against the contract."""

from enum import IntEnum


class FailureReason(IntEnum):
    CONTENT_UNREACHABLE = 1
    CONTENT_MISMATCH = 2
    UNSUPPORTED_IMAGE = 3
    TOO_LARGE = 4
    MODEL_ERROR = 5
    INVALID_CID = 6
    MODEL_UNAVAILABLE = 7
    NOT_DECRYPTABLE = 8  # not encrypted to this oracle (plaintext included), or undecryptable
    WRONG_BINDING = 9  # the envelope names another owner, chain or registry
    NOT_TISSUE = 10  # the input gate refused it
