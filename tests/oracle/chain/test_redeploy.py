"""Which saved deployment the dev stack keeps, on a real chain: only a registry that speaks this
interface; a file or a contract from before the envelope is deployed again."""

from pathlib import Path

from oracle.chain.deploy import deployment_on_chain
from tests.oracle.daemon_support import Stack, rpc


async def test_a_registry_from_before_the_envelope_is_not_kept(stack: Stack, tmp_path: Path) -> None:
    path, url = tmp_path / "deployment.json", stack.settings.rpc_urls[0]
    stack.deployment.save(path)
    assert deployment_on_chain(path, url) == stack.deployment

    without_keys = [item for item in stack.deployment.abi if item.get("name") != "encryptionKeys"]
    stack.deployment.model_copy(update={"abi": without_keys}).save(path)
    assert deployment_on_chain(path, url) is None

    stack.deployment.save(path)
    assert (
        await rpc(stack, "anvil_setCode", stack.deployment.address, "0x00") is None
    )  # code that answers nothing
    assert deployment_on_chain(path, url) is None
