"""The committed poison corpus (make_corpus.py): each file ends in the verdict its MANIFEST names,
in the sandbox's own function, and the found ones still break a bare Pillow (they are poison)."""

import json
import warnings

import pytest

from oracle.chain.reasons import FailureReason
from oracle.daemon.untrusted import open_image
from oracle.imaging import ImageRejected, InputPolicy
from tests.oracle.adversarial.make_corpus import CORPUS, pillow_raises

MANIFEST = json.loads((CORPUS / "MANIFEST.json").read_text())
ANVIL = (31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")


def test_the_manifest_names_every_file_and_only_those() -> None:
    assert sorted(MANIFEST) == sorted(p.name for p in CORPUS.iterdir() if p.name != "MANIFEST.json")
    assert sum(name.startswith("found-") for name in MANIFEST) >= 3


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_each_poison_ends_in_its_verdict(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    with pytest.raises(ImageRejected) as rejected:
        open_image(data, "0x" + "11" * 20, *ANVIL, True, InputPolicy())
    assert rejected.value.reason == FailureReason[MANIFEST[name]["reason"]]


@pytest.mark.parametrize("name", sorted(n for n in MANIFEST if n.startswith("found-")))
def test_found_inputs_raise_what_a_bare_decoder_does_not_expect(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raised = pillow_raises((CORPUS / name).read_bytes())
    assert raised == name.removesuffix(".bin").rsplit("-", 1)[1]
