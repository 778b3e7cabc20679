"""Small helpers the suites share."""

from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
from aiohttp import web

from oracle.dev.ipfs import IpfsNode
from oracle.dev.process import free_port
from oracle.ml.card import ModelCard
from oracle.ml.data.synth import synth_png, synthesize
from oracle.ml.sr.card import SrCard
from oracle.ml.sr.train import SrTrainConfig
from oracle.ml.sr.train import train as train_sr
from oracle.ml.train import TrainConfig, train

MAX_UPLOAD = 12 << 20


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """`app` on a real loopback port; returns (runner, base URL)."""
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def serve_gateway(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> tuple[web.AppRunner, str]:
    """A test gateway answering GET /ipfs/{cid} with `handler`."""
    app = web.Application()
    app.router.add_get("/ipfs/{cid}", handler)
    return await serve(app)


def make_node(data_dir: Path, token: str, port: int | None = None) -> IpfsNode:
    """The real local IPFS node (tools/ipfs-node.mjs) on a free port, content under `data_dir`."""
    return IpfsNode("127.0.0.1", port or free_port(), data_dir, token, data_dir / "node.log", MAX_UPLOAD)


def tiny_checkpoint(data: Path, models: Path) -> ModelCard:
    """A basecnn trained for one epoch on 24 synthetic images: a real checkpoint in seconds."""
    synthesize(data, 24, 1, seed=3, progress=False)
    return train(
        TrainConfig(
            model="basecnn",
            data=data,
            out=models / "basecnn",
            epochs=1,
            image_size=32,
            bootstrap=20,
            progress=False,
        )
    )


def tiny_sr_checkpoint(models: Path, name: str = "srresnet-tiny") -> SrCard:
    """An SRResNet (the paper's 16 blocks) after two steps on 48 px crops: a real, loadable SR
    checkpoint in seconds; it is not trained, and the tests about it ask nothing of its quality."""
    return train_sr(
        SrTrainConfig(
            model="srresnet",
            out=models / name,
            name=name,
            steps=2,
            batch_size=2,
            crop=48,
            synthetic=1,
            save_every=1,
            evaluate=False,
            device="cpu",
            progress=False,
        )
    )


def png(rng: np.random.Generator, malignant: bool) -> bytes:
    """One synthetic H&E-like image (700 by 460) as PNG bytes."""
    return synth_png(rng, malignant)
