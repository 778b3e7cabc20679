"""One tiny SR checkpoint shared by the SR suites."""

from pathlib import Path

import pytest

from oracle.ml.sr.card import SrCard
from tests.support import tiny_sr_checkpoint


@pytest.fixture(scope="session")
def tiny_sr(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SrCard]:
    models = tmp_path_factory.mktemp("sr-models")
    card = tiny_sr_checkpoint(models)
    return models / card.name, card
