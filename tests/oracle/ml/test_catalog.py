"""The oracle's model catalog finds a checkpoint added after it started (the dev stack publishes its
super-resolution model while the oracle runs), skips a card still being written, and refuses a bad
card at start."""

from pathlib import Path

import pytest

from oracle.ml.card import CARD_FILE, ModelCardError
from oracle.ml.catalog import ModelCatalog
from tests.support import tiny_checkpoint, tiny_sr_checkpoint


def test_a_checkpoint_added_after_the_start_is_found_and_a_half_written_card_skipped(tmp_path: Path) -> None:
    models = tmp_path / "models"
    first = tiny_checkpoint(tmp_path / "synth", models)
    catalog = ModelCatalog(models)
    assert "0x" + first.model_id.hex() in catalog

    half = models / "being-written" / CARD_FILE
    half.parent.mkdir()
    half.write_text('{"task": "super-res')
    later = tiny_sr_checkpoint(models, "later")
    later_id = "0x" + later.model_id.hex()
    assert later_id in catalog, "found by looking again"
    assert catalog.card(later_id).name == "later"
    assert catalog.policy(later_id) is not None
    assert "0x" + "00" * 32 not in catalog
    with pytest.raises(ModelCardError, match="no checkpoint"):
        catalog.card("0x" + "00" * 32)

    with pytest.raises(ModelCardError, match="not a valid model card"):
        ModelCatalog(models)  # at start, a bad card stops the oracle
