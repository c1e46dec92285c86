"""A local shop for the crawler benchmark: ``/p/<n>`` answers a ~20 KB product page (JSON-LD
price, no ETag, so every fetch is a full page), ``/count`` how many pages were served; it has
no robots.txt (a 404: everything allowed).

``python -m bench.crawl_pages PORT``; it also answers ``/healthz`` for the harness.
"""

from __future__ import annotations

import json
import sys

from aiohttp import web

PAGE_BYTES = 20_000
_FILLER = "<p>Soft cotton shirt, machine washable, sizes S to XXL, ships in two days.</p>\n"


def product_page(number: int) -> bytes:
    """Product ``number``'s page: a JSON-LD offer in the head, then filler text to 20 KB."""
    offer = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": f"Shirt {number}",
        "offers": {
            "@type": "Offer",
            "price": f"{19 + number % 7}.99",
            "priceCurrency": "EUR",
            "availability": "https://schema.org/InStock",
        },
    }
    head = f'<html><head><script type="application/ld+json">{json.dumps(offer)}</script></head>'
    body = _FILLER * (PAGE_BYTES // len(_FILLER))
    return f"{head}<body><h1>Shirt {number}</h1>{body}</body></html>".encode()


def main(port: int) -> None:
    """Serve the shop on ``port`` until killed."""
    pages = [product_page(number) for number in range(100)]
    served = 0

    async def page(request: web.Request) -> web.Response:
        nonlocal served
        served += 1
        number = int(request.match_info["number"])
        return web.Response(body=pages[number % len(pages)], content_type="text/html")

    async def count(_: web.Request) -> web.Response:
        return web.json_response({"served": served})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/p/{number}", page)
    app.router.add_get("/count", count)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(int(sys.argv[1]))
