"""What making one image's result comes to in the classify stage: its `Classified` record, or the
exception that stopped it (that image's verdict, or its retry, decided by classify.py)."""

from oracle.daemon.stages.fetch import Decoded
from oracle.daemon.writes import Classified
from oracle.document import ResultDocument
from oracle.store.models import Job

Outcome = Classified | Exception


def classified(job: Job, decoded: Decoded, document: ResultDocument) -> Classified:
    """The record to write, hashed here: a document that cannot be hashed raises before it is sent."""
    return Classified(
        image_id=job.image_id,
        block_hash=decoded.block_hash,
        content_sha256=decoded.content_sha256,
        document=document.canonical_dict(),
        result_hash="0x" + document.result_hash.hex(),
    )
