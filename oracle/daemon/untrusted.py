"""What runs on untrusted bytes, inside the sandbox's worker processes (oracle/daemon/sandbox.py):
checking a gateway's answer against its CID, then opening the envelope and decoding the image.

Each function ends in its result or a typed verdict, whatever the bytes: an exception a parser
raises is turned into its stage's verdict here, so that only our own faults are ever retried.
Nothing here imports torch: a worker starts in well under a second and stays small."""

import ctypes
import hashlib
import math
import os
import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from multiformats import CID
from pyrage import x25519

from oracle.crypto.envelope import EnvelopeError, check_binding, is_envelope, open_envelope
from oracle.gate import check_tissue
from oracle.imaging import ImageRejected, ImageTooLarge, InputPolicy, decode
from oracle.ipfs.errors import ContentMismatch, ContentTooLarge
from oracle.ipfs.verify import verify_car, verify_raw
from oracle.settings import GateLimits

PR_SET_DUMPABLE = 4  # <linux/prctl.h>
T = TypeVar("T")
_identity: x25519.Identity | None = None
_gate: GateLimits | None = None


def no_core_dumps() -> None:
    """A crash must not write decrypted images to disk in a core file."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def start_worker(identity: str | None, memory_limit: int, gate: GateLimits | None = None) -> None:
    """Each worker, once: C libraries' chatter about hostile files (libtiff writes to stderr)
    goes nowhere; the address space may grow by `memory_limit` bytes past what the imports took;
    the oracle's key is kept for opening envelopes, and the gate's limits for what it opens."""
    global _identity, _gate
    no_core_dumps()
    if sys.platform == "linux":  # not even a core handler may read a worker's decrypted bytes
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (mapped + memory_limit, mapped + memory_limit))
    _identity = None if identity is None else x25519.Identity.from_str(identity)
    _gate = gate


def within_cpu(seconds: float, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` with at most `seconds` more CPU time for this worker: past them the
    kernel ends it (SIGXCPU), whatever the wall clock says."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (math.ceil(usage.ru_utime + usage.ru_stime + seconds), hard))
    return function(*args)


def verify_answer(cid: str, raw: bool, body: bytes, max_bytes: int) -> bytes:
    """The content a gateway's answer holds for `cid`, or why it does not."""
    root = CID.decode(cid)
    try:
        return verify_raw(root, body) if raw else verify_car(root, body, max_bytes)
    except (ContentMismatch, ContentTooLarge):
        raise
    except MemoryError:
        raise ContentTooLarge(f"{cid}: more than fits in the sandbox") from None
    except Exception as exc:  # noqa: BLE001 - hostile bytes end in a verdict, never a retry
        raise ContentMismatch(f"{cid}: {type(exc).__name__}: {exc}") from None


@dataclass(frozen=True)
class Opened:
    """A decrypted, decoded image: 8-bit RGB pixels, the sha256 of the image's bytes, and the
    owner's age recipient where the envelope names one (what the oracle makes is sealed to it)."""

    pixels: npt.NDArray[np.uint8]
    content_sha256: str
    reply_to: str | None = None


def open_image(
    data: bytes, owner: str, chain_id: int, registry: str, accept_plaintext: bool, policy: InputPolicy
) -> Opened:
    """Decrypts the envelope (plaintext only where accepted), refuses one made for another
    registration, decodes within the model's `policy`, and refuses what the input gate says is not
    tissue where the policy asks for the gate. The plaintext
    never leaves this process but as pixels."""
    try:
        reply_to = None
        if is_envelope(data) or not accept_plaintext:
            if _identity is None:
                raise EnvelopeError("this oracle has no decryption key")
            opened = open_envelope(data, [_identity])
            check_binding(opened.binding, owner, chain_id, registry)
            data, reply_to = opened.image, opened.binding.reply_to
        pixels = np.asarray(decode(data, policy.max_pixels, refuse_side=policy.refuse_side))
        if _gate is not None and policy.tissue:
            check_tissue(pixels, _gate)
        return Opened(pixels, hashlib.sha256(data).hexdigest(), reply_to)
    except (EnvelopeError, ImageRejected):
        raise
    except MemoryError:
        raise ImageTooLarge("the image does not fit in the sandbox") from None
    except Exception as exc:  # noqa: BLE001 - hostile bytes end in a verdict, never a retry
        raise ImageRejected(
            f"cannot be opened: {type(exc).__name__}"
        ) from None  # its words may quote the image
