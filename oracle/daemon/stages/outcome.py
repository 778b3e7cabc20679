"""What making one image's result comes to in the classify stage: its `Classified` record, or the
exception that stopped it (that image's verdict, or its retry, decided by classify.py)."""

from typing import Any

from oracle.chain.deployment import Deployment
from oracle.daemon.writes import Classified
from oracle.document import ResultDocument, new_salt
from oracle.store.models import Job

Outcome = Classified | Exception


def job_fields(
    job: Job, content_sha256: str, model_id: str, oracle: str, deployment: Deployment
) -> dict[str, Any]:
    """What every task's result document says of its job, the oracle and the chain, with a new salt."""
    return {
        "image_id": job.image_id,
        "cid": job.cid,
        "content_sha256": content_sha256,
        "model_id": model_id,
        "oracle": oracle,
        "chain_id": deployment.chain_id,
        "registry": deployment.address,
        "registration_block": job.block_number,
        "salt": new_salt(),
    }


def classified(job: Job, document: ResultDocument) -> Classified:
    """The record to write for the job's registration, hashed here: a document that cannot be
    hashed raises before it is sent."""
    return Classified(
        image_id=job.image_id,
        block_hash=job.block_hash,
        content_sha256=document.content_sha256,
        document=document.canonical_dict(),
        result_hash="0x" + document.result_hash.hex(),
    )
