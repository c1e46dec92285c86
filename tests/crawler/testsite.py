"""Local test sites for the crawler: real HTTP servers, one port per site, in their own process.

``python -m tests.crawler.testsite CONFIG.json`` serves every site the JSON file describes and
prints ``ready`` once all listen. Each request is written to the access log (JSON lines: site,
path, start, end, status, agent; wall-clock seconds) as it ends, with status 499 when its
client went away first; ``/_control`` (not logged) sets a page's price. A site is a dict:

- ``port``; ``robots``: the robots.txt text, or an HTTP status to answer it with;
- ``pages``: how many product pages (``/p/0`` ...), priced ``1000 + n`` minor units of EUR;
- ``markup``: ``jsonld`` (default), ``microdata``, ``opengraph`` or ``plain`` (for CSS rules);
- ``sleep_ms``: time to answer a page; ``hang``: never answer anything;
- ``throttle``: answer the first N page requests with 429 and ``Retry-After: <retry_after>``;
- ``padding``: bytes of filler text per page (a realistic page weight);
- ``redirect_to``: the index of another site (in the config's order): ``/go/<path>`` answers a
  302 to ``<path>`` on that site.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

_FILLER = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n"


def product_page(markup: str, name: str, price: int, padding: int) -> str:
    """A product page stating ``price`` (EUR minor units) in ``markup``'s way."""
    amount = f"{price // 100}.{price % 100:02d}"
    filler = _FILLER * (padding // len(_FILLER))
    head, body = "", f"<h1>{name}</h1>"
    if markup == "jsonld":
        data = {
            "@context": "https://schema.org",
            "@type": "Product",
            "name": name,
            "offers": {
                "@type": "Offer",
                "price": amount,
                "priceCurrency": "EUR",
                "availability": "https://schema.org/InStock",
            },
        }
        head = f'<script type="application/ld+json">{json.dumps(data)}</script>'
    elif markup == "microdata":
        body = (
            '<div itemscope itemtype="https://schema.org/Product">'
            f'<h1 itemprop="name">{name}</h1>'
            '<div itemprop="offers" itemscope itemtype="https://schema.org/Offer">'
            f'<span itemprop="price" content="{amount}">{amount} €</span>'
            '<meta itemprop="priceCurrency" content="EUR">'
            '<link itemprop="availability" href="https://schema.org/InStock"></div></div>'
        )
    elif markup == "opengraph":
        head = (
            f'<meta property="product:price:amount" content="{amount}">'
            '<meta property="product:price:currency" content="EUR">'
        )
    else:
        body += f'<div class="buy"><span class="price">€ {amount}</span></div>'
    return f"<!doctype html><html><head>{head}</head><body>{body}{filler}</body></html>"


class Site:
    """One site's behaviour and state."""

    def __init__(self, config: dict[str, Any], log: Any, ports: list[int]) -> None:
        self.config = config
        self.log = log
        self.ports = ports
        self.prices: dict[str, int] = {}
        self.throttled = 0

    def price(self, path: str) -> int:
        """The current price of a page."""
        return self.prices.get(path, 1000 + int(path.rsplit("/", 1)[-1]))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer a request, and log it once answered (or abandoned by its client)."""
        if request.path == "/_control":
            self.prices.update((await request.json())["prices"])
            return web.json_response({"ok": True})
        start = time.time()
        status = 499  # as nginx logs a request whose client went away before the answer
        try:
            response = await self._answer(request)
            status = response.status
            return response
        finally:
            self.log.write(
                json.dumps(
                    {
                        "site": self.config["port"],
                        "path": request.path_qs,
                        "start": start,
                        "end": time.time(),
                        "status": status,
                        "agent": request.headers.get("User-Agent", ""),
                    }
                )
                + "\n"
            )
            self.log.flush()

    async def _answer(self, request: web.Request) -> web.Response:
        config = self.config
        if config.get("hang"):
            await asyncio.sleep(3600)
        if request.path == "/robots.txt":
            robots = config.get("robots", "")
            if isinstance(robots, int):
                return web.Response(status=robots)
            return web.Response(text=robots)
        if request.path.startswith("/sitemap"):
            return self._sitemap(request)
        if request.path.startswith("/go/") and "redirect_to" in config:
            port = self.ports[config["redirect_to"]]
            location = f"http://127.0.0.1:{port}/{request.path_qs.removeprefix('/go/')}"
            return web.Response(status=302, headers={"Location": location})
        if config.get("sleep_ms"):
            await asyncio.sleep(config["sleep_ms"] / 1000)
        if self.throttled < config.get("throttle", 0):
            self.throttled += 1
            return web.Response(status=429, headers={"Retry-After": str(config["retry_after"])})
        page = product_page(
            config.get("markup", "jsonld"),
            request.path,
            self.price(request.path),
            config.get("padding", 0),
        )
        etag = '"' + hashlib.sha1(page.encode(), usedforsecurity=False).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(text=page, content_type="text/html", headers={"ETag": etag})

    def _sitemap(self, request: web.Request) -> web.Response:
        base = f"http://127.0.0.1:{self.config['port']}"
        if request.path == "/sitemap.xml":
            entries = "".join(
                f"<sitemap><loc>{base}/sitemap-{part}.xml</loc></sitemap>"
                for part in ("products", "pages")
            )
            body = f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}'
            return web.Response(text=body + "</sitemapindex>", content_type="application/xml")
        if request.path == "/sitemap-products.xml":
            paths = [f"/p/{n}" for n in range(self.config.get("pages", 0))]
        else:
            paths = ["/about", "/contact"]
        urls = "".join(f"<url><loc>{base}{path}</loc></url>" for path in paths)
        body = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
        return web.Response(text=body, content_type="application/xml")


async def serve(config: dict[str, Any], log: Any) -> None:
    """Serve every site until killed."""
    runners = []
    ports = [site_config["port"] for site_config in config["sites"]]
    for site_config in config["sites"]:
        site = Site(site_config, log, ports)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", site.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", site_config["port"]).start()
        runners.append(runner)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    settings = json.loads(Path(sys.argv[1]).read_text())
    with Path(settings["log"]).open("a") as access_log:
        asyncio.run(serve(settings, access_log))
