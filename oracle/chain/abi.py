"""The registry's functions and events, resolved from its ABI once and coded with eth_abi directly.

web3's contract objects look the ABI up, validate every argument and wrap every answer in
attribute dicts on each call: a few ms of CPU per call, and the daemon makes several per image.
These do the same coding for a fixed ABI element, and are strict: an RPC answer is accepted only
when it is exactly the encoding of what it decodes to (eth_abi's decoder may be lenient: another
package can leave it padding short input with zeros), since the RPC endpoint is outside."""

from collections.abc import Mapping, Sequence
from typing import Any

from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError, EncodingError
from eth_abi.grammar import parse
from eth_utils.abi import (
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
    get_abi_input_types,
    get_abi_output_types,
)
from hexbytes import HexBytes
from web3.utils.abi import get_abi_element

from oracle.chain.errors import ChainError


def strict_decode(types: Sequence[str], raw: bytes, what: str) -> tuple[Any, ...]:
    cause: Exception | None = None
    try:
        values = tuple(decode(types, raw))
        if encode(types, values) == raw:
            return values
    except (DecodingError, EncodingError) as exc:
        cause = exc
    raise ChainError(f"{what}: the RPC answered 0x{raw[:72].hex()}, which its ABI cannot decode") from cause


class Function:
    def __init__(self, abi: Any, name: str) -> None:
        element = get_abi_element(abi, name)
        self.name = name
        self.selector = function_abi_to_4byte_selector(element)
        self.inputs = get_abi_input_types(element)
        self.outputs = get_abi_output_types(element)

    def encode(self, *args: Any) -> bytes:
        """Calldata: the selector and the arguments."""
        return self.selector + encode(self.inputs, args)

    def decode(self, answer: bytes) -> tuple[Any, ...]:
        return strict_decode(self.outputs, answer, self.name)


class Event:
    """One event of the registry, decoded from a log as eth_getLogs or a receipt gives it (hex
    strings or bytes). Only value types may be indexed: a topic holds their encoding."""

    def __init__(self, abi: Any, name: str) -> None:
        element: Any = get_abi_element(abi, name)
        self.name = name
        self.topic = bytes(event_abi_to_log_topic(element))
        inputs = element["inputs"]
        self.indexed = [(i["name"], i["type"]) for i in inputs if i["indexed"]]
        self.data = [(i["name"], i["type"]) for i in inputs if not i["indexed"]]
        if any(parse(kind).is_dynamic for _, kind in self.indexed):
            raise ValueError(f"{name}: an indexed dynamic type is stored as a hash and cannot be decoded")

    def matches(self, log: Mapping[str, Any]) -> bool:
        topics = log.get("topics")
        return isinstance(topics, list | tuple) and bool(topics) and _bytes(topics[0], "topic") == self.topic

    def decode(self, log: Mapping[str, Any]) -> dict[str, Any]:
        """The event's arguments by name; `ChainError` unless the log is exactly this event."""
        topics = [_bytes(t, f"{self.name} topic") for t in log.get("topics") or ()]
        if len(topics) != 1 + len(self.indexed) or topics[0] != self.topic:
            shown = [t.hex() for t in topics][:4]
            raise ChainError(f"{self.name}: a log with topics {shown} is not this event")
        values = {}
        for (name, kind), topic in zip(self.indexed, topics[1:], strict=True):
            (values[name],) = strict_decode([kind], topic, f"{self.name}.{name}")
        data = strict_decode([kind for _, kind in self.data], _bytes(log.get("data"), "data"), self.name)
        values |= dict(zip([name for name, _ in self.data], data, strict=True))
        return values


def _bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return bytes(HexBytes(value))
        except ValueError:
            pass
    raise ChainError(f"the RPC answered {str(value)[:80]!r} where {what} bytes belong")
