"""Small helpers the suites share."""

import socket
from collections.abc import Awaitable, Callable

from aiohttp import web


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
