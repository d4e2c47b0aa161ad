"""Local HTTP servers standing in for a shop's admin API, speaking the documented request and
response shapes: Shopify's Admin GraphQL (discount create and update, redeem codes added in
bulk and read back, product variants by SKU) and WooCommerce's REST coupons/batch and
products?sku=. Each keeps what it was sent, and can be told to answer the next requests
with an error (a 429 with Retry-After, a 401, a 500)."""

from __future__ import annotations

import base64
import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: dict | None


@dataclass
class Shop:
    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    # Answers to give instead of the real one, first come first served: (status, headers, body).
    upcoming: list[tuple[int, dict, dict]] = field(default_factory=list)
    # How many requests are answered for real before `upcoming` is served.
    wait_for: int = 0
    codes: dict[str, str] = field(default_factory=dict)  # code → its discount or coupon id
    discounts: dict[str, dict] = field(default_factory=dict)
    coupons: dict[int, dict] = field(default_factory=dict)
    bulks: dict[str, list[dict]] = field(default_factory=dict)
    products: dict[str, int] = field(default_factory=lambda: {"TOTE-1": 4411})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, word: str) -> list[Seen]:
        """Requests whose GraphQL query or path holds `word`."""
        return [
            r
            for r in self.requests
            if word in r.path or word in ((r.body or {}).get("query") or "")
        ]


def _shopify(shop: Shop, seen: Seen) -> tuple[int, dict]:
    if seen.headers.get("X-Shopify-Access-Token") != "shpat_test":
        return 401, {"errors": "[API] Invalid API key or access token (unrecognized login)"}
    query, variables = seen.body["query"], seen.body.get("variables") or {}
    if "productVariants" in query:
        sku = variables["q"].removeprefix("sku:")
        found = shop.products.get(sku)
        nodes = [{"id": f"gid://shopify/ProductVariant/{found}"}] if found else []
        return 200, {"data": {"productVariants": {"nodes": nodes}}}
    for kind in ("Basic", "FreeShipping"):
        name = f"discountCode{kind}Create"
        if name in query:
            discount = variables["d"]
            if discount["code"] in shop.codes:
                errors = [
                    {
                        "field": ["basicCodeDiscount", "code"],
                        "code": "TAKEN",
                        "message": "Code must be unique. Please try a different code.",
                    }
                ]
                return 200, {"data": {name: {"codeDiscountNode": None, "userErrors": errors}}}
            gid = f"gid://shopify/DiscountCodeNode/{len(shop.discounts) + 1}"
            shop.discounts[gid] = {"kind": kind, **discount}
            shop.codes[discount["code"]] = gid
            return 200, {"data": {name: {"codeDiscountNode": {"id": gid}, "userErrors": []}}}
        name = f"discountCode{kind}Update"
        if name in query:
            shop.discounts[variables["id"]].update(variables["d"])
            return 200, {
                "data": {name: {"codeDiscountNode": {"id": variables["id"]}, "userErrors": []}}
            }
    if "discountRedeemCodeBulkAdd" in query:
        codes = variables["codes"]
        if len(codes) > 250:
            return 200, {"errors": [{"message": "codes: Maximum: 250 codes."}]}
        bulk = f"gid://shopify/DiscountRedeemCodeBulkCreation/{len(shop.bulks) + 1}"
        nodes = []
        for item in codes:
            errors = []
            if item["code"] in shop.codes:
                errors = [{"message": "Code must be unique. Please try a different code."}]
            else:
                shop.codes[item["code"]] = variables["id"]
            nodes.append({"code": item["code"], "errors": errors})
        shop.bulks[bulk] = nodes
        return 200, {
            "data": {"discountRedeemCodeBulkAdd": {"bulkCreation": {"id": bulk}, "userErrors": []}}
        }
    if "discountRedeemCodeBulkCreation" in query:
        nodes = shop.bulks.get(variables["id"])
        creation = None if nodes is None else {"done": True, "codes": {"nodes": nodes}}
        return 200, {"data": {"discountRedeemCodeBulkCreation": creation}}
    return 200, {"errors": [{"message": "Field doesn't exist"}]}


def _woocommerce(shop: Shop, seen: Seen) -> tuple[int, dict | list]:
    expected = "Basic " + base64.b64encode(b"ck_test:cs_test").decode()
    if seen.headers.get("Authorization") != expected:
        return 401, {
            "code": "woocommerce_rest_authentication_error",
            "message": "Consumer key is invalid.",
            "data": {"status": 401},
        }
    parts = urlsplit(seen.path)
    if parts.path == "/wp-json/wc/v3/products":
        sku = parse_qs(parts.query).get("sku", [""])[0]
        found = shop.products.get(sku)
        return 200, ([{"id": found, "sku": sku}] if found else [])
    if parts.path == "/wp-json/wc/v3/coupons/batch":
        if len(seen.body.get("create", [])) + len(seen.body.get("update", [])) > 100:
            return 413, {
                "code": "rest_request_entity_too_large",
                "message": "Unable to accept more than 100 items for this request.",
            }
        answer: dict = {}
        for item in seen.body.get("create", []):
            if item["code"].lower() in shop.codes:
                answer.setdefault("create", []).append(
                    {
                        "id": 0,
                        "error": {
                            "code": "woocommerce_rest_coupon_code_already_exists",
                            "message": "The coupon code already exists",
                            "data": {"status": 400},
                        },
                    }
                )
                continue
            number = len(shop.coupons) + 101
            shop.coupons[number] = item
            shop.codes[item["code"].lower()] = str(number)
            answer.setdefault("create", []).append({"id": number, **item})
        for item in seen.body.get("update", []):
            shop.coupons[item["id"]].update(item)
            answer.setdefault("update", []).append(item)
        return 200, answer
    return 404, {"code": "rest_no_route", "message": "No route was found."}


@contextmanager
def fake_shop(platform: str):
    shop = Shop()
    answer = _shopify if platform == "shopify" else _woocommerce

    class Handler(BaseHTTPRequestHandler):
        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            seen = Seen(
                self.command, self.path, dict(self.headers), json.loads(raw) if raw else None
            )
            with shop.lock:
                shop.requests.append(seen)
                if shop.upcoming and shop.wait_for == 0:
                    status, headers, body = shop.upcoming.pop(0)
                else:
                    shop.wait_for = max(0, shop.wait_for - 1)
                    headers = {}
                    status, body = answer(shop, seen)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    shop.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield shop
    finally:
        server.shutdown()
        server.server_close()
