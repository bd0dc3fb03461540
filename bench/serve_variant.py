#!/usr/bin/env python3
"""A/B helper for bench/webhook.py: `branchbot serve` with experimental knobs, nothing in
the app edited. Use it through webhook.py's --branchbot-serve, e.g.

    .venv/bin/python bench/webhook.py --only branchbot \
        --branchbot-serve "{venv}/python {bench}/serve_variant.py {config} --limiter 1"

--limiter N      handler threads (the app's anyio CapacityLimiter; the app uses 8)
--null-handler   skip Engine.handle and echo the text: BranchBot's HTTP + safe-mode crypto only
--no-background  no outbox worker / scheduler (the app's create_app(background=False))
--quiet          drop the per-message INFO log line
"""

from __future__ import annotations

import argparse
import inspect
import logging

import anyio
import uvicorn

from bot.app import create_app
from bot.config import load_config
from bot.store import create_store


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("--limiter", type=int)
    p.add_argument("--null-handler", action="store_true")
    p.add_argument("--no-background", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.quiet:
        logging.getLogger("branchbot").setLevel(logging.WARNING)
    config = load_config(args.config)
    kwargs = {}
    if "background" in inspect.signature(create_app).parameters:
        kwargs["background"] = not args.no_background
    app = create_app(config, create_store(config.database.url), **kwargs)
    if args.limiter:
        app.state.webhooks.limiter = anyio.CapacityLimiter(args.limiter)
    if args.null_handler:
        app.state.engine.handle = lambda inbound: inbound.text
    uvicorn.run(app, host=config.server.host, port=config.server.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
