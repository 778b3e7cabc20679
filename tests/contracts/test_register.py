"""registerImage: ids, models, fees, duplicates, CID bounds, and the event."""

import ape
import pytest

from oracle.chain.registry import Status
from tests.contracts.conftest import FEE, MODEL_A, MODEL_B, TIMEOUT, image_id


def test_registers_with_the_default_model(registry, patient, new_cid, chain):
    cid = new_cid()
    assert len(cid) == 59
    assert registry.registerImage.call(cid, b"\x00" * 32, sender=patient) == image_id(patient, cid)
    tx = registry.registerImage(cid, b"\x00" * 32, sender=patient)
    assert tx.events == [
        registry.ImageRegistered(imageId=image_id(patient, cid), owner=patient, modelId=MODEL_A, cid=cid)
    ]
    record = registry.getImage(image_id(patient, cid))
    assert record.owner == patient
    assert record.status == Status.PENDING
    assert record.modelId == MODEL_A
    assert record.resultHash == b"\x00" * 32
    block_time = chain.provider.get_block(tx.block_number).timestamp
    assert record.registeredAt == block_time
    assert record.deadline == block_time + TIMEOUT
    assert record.feePaid == 0
    assert registry.statusOf(image_id(patient, cid)) == Status.PENDING
    assert registry.imageIdOf(patient, cid) == image_id(patient, cid)


def test_registers_with_a_named_model(registry, patient, new_cid):
    cid = new_cid()
    tx = registry.registerImage(cid, MODEL_B, sender=patient)
    assert tx.events[0].modelId == MODEL_B
    assert registry.getImage(image_id(patient, cid)).modelId == MODEL_B


def test_an_owner_registering_a_cid_twice_reverts(registry, patient, new_cid):
    cid = new_cid()
    registry.registerImage(cid, MODEL_A, sender=patient)
    with ape.reverts(registry.AlreadyRegistered, imageId=image_id(patient, cid)):
        registry.registerImage(cid, MODEL_B, sender=patient)


def test_a_record_belongs_to_its_registrant_so_a_seen_cid_takes_nothing(
    registry, patient, other, oracle, new_cid
):
    """A front-runner who copies a patient's CID gets a record of its own, not the patient's."""
    cid = new_cid()
    registry.registerImage(cid, MODEL_A, sender=other)  # the squatter, first
    registry.registerImage(cid, MODEL_A, sender=patient)
    squatted, own = image_id(other, cid), image_id(patient, cid)
    assert squatted != own
    assert (registry.getImage(squatted).owner, registry.getImage(own).owner) == (other, patient)
    with ape.reverts(registry.NotImageOwner, imageId=own, caller=other):
        registry.cancel(own, sender=other)
    registry.postResult(own, b"\x01" * 32, sender=oracle)
    assert (registry.statusOf(own), registry.statusOf(squatted)) == (Status.CLASSIFIED, Status.PENDING)


@pytest.mark.parametrize("cid", ["", "b" * 129])
def test_cid_length_is_bounded(registry, patient, cid):
    with ape.reverts(registry.InvalidCid, length=len(cid)):
        registry.registerImage(cid, MODEL_A, sender=patient)


def test_longest_cid_is_accepted(registry, patient):
    cid = "b" * 128
    registry.registerImage(cid, MODEL_A, sender=patient)
    assert registry.statusOf(image_id(patient, cid)) == Status.PENDING


def test_unknown_model_reverts(registry, patient, new_cid):
    unknown = b"\x42" * 32
    with ape.reverts(registry.UnknownModel, modelId=unknown):
        registry.registerImage(new_cid(), unknown, sender=patient)


def test_retired_model_reverts(registry, admin, patient, new_cid):
    registry.retireModel(MODEL_B, sender=admin)
    with ape.reverts(registry.ModelNotActive, modelId=MODEL_B):
        registry.registerImage(new_cid(), MODEL_B, sender=patient)


def test_no_default_model_reverts(project, admin, patient, new_cid):
    bare = project.ImageRegistry.deploy(admin, TIMEOUT, sender=admin)
    with ape.reverts(bare.NoDefaultModel):
        bare.registerImage(new_cid(), b"\x00" * 32, sender=patient)


def test_fee_must_be_paid_exactly(paid_registry, patient, new_cid):
    for sent in (0, FEE - 1, FEE + 1):
        with ape.reverts(paid_registry.IncorrectFee, sent=sent, required=FEE):
            paid_registry.registerImage(new_cid(), MODEL_A, sender=patient, value=sent)


def test_fee_is_escrowed(paid_registry, patient, new_cid):
    cid = new_cid()
    before = patient.balance
    tx = paid_registry.registerImage(cid, MODEL_A, sender=patient, value=FEE)
    assert paid_registry.balance == FEE
    assert patient.balance == before - FEE - tx.total_fees_paid
    assert paid_registry.getImage(image_id(patient, cid)).feePaid == FEE
    assert paid_registry.earnedFees() == 0


def test_pending_request_keeps_the_fee_it_paid(paid_registry, admin, patient, new_cid):
    cid = new_cid()
    paid_registry.registerImage(cid, MODEL_A, sender=patient, value=FEE)
    paid_registry.setModelFee(MODEL_A, 3 * FEE, 0, sender=admin)
    assert paid_registry.getImage(image_id(patient, cid)).feePaid == FEE
    later = new_cid()
    paid_registry.registerImage(later, MODEL_A, sender=patient, value=3 * FEE)
    assert paid_registry.getImage(image_id(patient, later)).feePaid == 3 * FEE


def test_each_model_charges_its_own_fee(paid_registry, admin, patient, new_cid):
    """A 4x image costs the oracle more than a label: its model may cost more, and the exact fee
    of the model asked for (or of the default, for model zero) is what a registration pays."""
    paid_registry.setModelFee(MODEL_B, 5 * FEE, FEE, sender=admin)
    with ape.reverts(paid_registry.IncorrectFee, sent=FEE, required=5 * FEE):
        paid_registry.registerImage(new_cid(), MODEL_B, sender=patient, value=FEE)
    with ape.reverts(paid_registry.IncorrectFee, sent=5 * FEE, required=FEE):
        paid_registry.registerImage(new_cid(), b"\x00" * 32, sender=patient, value=5 * FEE)
    dear, cheap = new_cid(), new_cid()
    paid_registry.registerImage(dear, MODEL_B, sender=patient, value=5 * FEE)
    paid_registry.registerImage(cheap, b"\x00" * 32, sender=patient, value=FEE)
    assert paid_registry.getImage(image_id(patient, dear)).feePaid == 5 * FEE
    assert paid_registry.getImage(image_id(patient, cheap)).feePaid == FEE
    assert paid_registry.balance == 6 * FEE
    paid_registry.setModelFee(MODEL_B, 0, 0, sender=admin)  # free again: no ether accepted
    with ape.reverts(paid_registry.IncorrectFee, sent=1, required=0):
        paid_registry.registerImage(new_cid(), MODEL_B, sender=patient, value=1)
    free = new_cid()
    paid_registry.registerImage(free, MODEL_B, sender=patient)
    assert paid_registry.getImage(image_id(patient, free)).feePaid == 0


def test_model_zero_charges_the_default_models_current_terms(paid_registry, admin, oracle, patient, new_cid):
    """The default model's terms follow both its fee changes and a change of default."""
    paid_registry.setModelFee(MODEL_A, 2 * FEE, FEE, sender=admin)
    paid_registry.setModelFee(MODEL_B, 5 * FEE, 0, sender=admin)
    with ape.reverts(paid_registry.IncorrectFee, sent=FEE, required=2 * FEE):
        paid_registry.registerImage(new_cid(), b"\x00" * 32, sender=patient, value=FEE)
    first = new_cid()
    paid_registry.registerImage(first, b"\x00" * 32, sender=patient, value=2 * FEE)
    paid_registry.setDefaultModel(MODEL_B, sender=admin)
    with ape.reverts(paid_registry.IncorrectFee, sent=2 * FEE, required=5 * FEE):
        paid_registry.registerImage(new_cid(), b"\x00" * 32, sender=patient, value=2 * FEE)
    second = new_cid()
    paid_registry.registerImage(second, b"\x00" * 32, sender=patient, value=5 * FEE)
    a, b = image_id(patient, first), image_id(patient, second)
    assert (paid_registry.getImage(a).modelId, paid_registry.getImage(a).feePaid) == (MODEL_A, 2 * FEE)
    assert (paid_registry.getImage(b).modelId, paid_registry.getImage(b).feePaid) == (MODEL_B, 5 * FEE)
    balance = patient.balance
    paid_registry.reportFailures([a, b], [3, 3], sender=oracle)  # each keeps its own model's terms
    assert patient.balance == balance + FEE + 5 * FEE


def test_unknown_image_reads_as_empty(registry):
    record = registry.getImage(b"\x01" * 32)
    assert record.status == Status.NONE
    assert record.owner == "0x0000000000000000000000000000000000000000"
    assert record.deadline == 0


def test_free_registry_refuses_ether(registry, patient, new_cid):
    with ape.reverts(registry.IncorrectFee, sent=1, required=0):
        registry.registerImage(new_cid(), MODEL_A, sender=patient, value=1)
