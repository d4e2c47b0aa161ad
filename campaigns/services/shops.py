"""Promotions and their codes created in the merchant's connected shops, so that a code works
at the shop's own checkout: Shopify (one discount with its redeem codes, Admin GraphQL API)
and WooCommerce (a coupon per code, REST API). Run by campaigns.tasks.shop_push_task, queued
whenever a promotion changes or gets codes.

Each code is sent to a shop once: a ShopCode row records the shop's answer for it, and only
codes without one are sent. One run at a time talks to a shop for a promotion (a lease on
its ShopPush). A busy shop (429, throttled, 5xx, unreachable) raises ShopBusy and the task
tries again later; a refusal (another 4xx, or an error the shop names) is kept on the
ShopPush and shown on the promotion's page."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils.timezone import now

from campaigns.models import Code, Promotion, ShopCode, ShopPush
from merchants.models import StoreConnection

Kind = Promotion.Kind
SHOPIFY_API_VERSION = "2025-01"
LEASE = timedelta(minutes=15)
TIMEOUT = 30


class ShopBusy(Exception):
    """The shop can't take it now (429, throttled, 5xx, unreachable): try again later,
    after `wait` seconds if the shop said how long."""

    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


class ShopRefused(Exception):
    """The shop said no in a way trying again won't change: shown on the promotion."""


def _call(method: str, url: str, *, body: dict | None, headers: dict) -> dict | list:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        text = error.read()[:4000].decode(errors="replace")
        if error.code == 429 or error.code >= 500:
            raise ShopBusy(f"HTTP {error.code}", wait=_retry_after(error.headers)) from error
        raise ShopRefused(_refusal(error.code, text)) from error
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise ShopBusy(str(error)) from error


def _retry_after(headers) -> float | None:
    try:
        return float(headers.get("Retry-After"))
    except (TypeError, ValueError):
        return None


def _refusal(status: int, text: str) -> str:
    """The shop's own words: WooCommerce's {"code", "message"}, Shopify's {"errors"}."""
    try:
        answer = json.loads(text)
    except ValueError:
        return f"HTTP {status}: {text[:300]}"
    if isinstance(answer, dict) and answer.get("message"):
        return f"HTTP {status}: {answer['message']} ({answer.get('code', '')})"
    if isinstance(answer, dict) and answer.get("errors"):
        return f"HTTP {status}: {answer['errors']}"
    return f"HTTP {status}: {text[:300]}"


def retry_wait(retries: int, asked: float | None) -> float:
    """Seconds before the next try: what the shop asked for, and at least an exponential
    backoff from 5 s, at most 10 minutes."""
    return min(max(asked or 0, 5 * 2**retries), 600)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _window(promotion: Promotion) -> tuple[datetime, datetime | None]:
    """A promotion switched off is sent as one that has ended, so the shop refuses it too."""
    starts = promotion.starts_at or promotion.created_at
    if not promotion.is_active:
        return starts, starts + timedelta(seconds=1)
    return starts, promotion.ends_at


@dataclass
class Pending:
    pk: int
    code: str
    email: str


@dataclass
class Answer:
    pk: int
    remote_id: str = ""
    confirmed: bool = True
    error: str = ""


class Shopify:
    """A discount (basic or free shipping) with the promotion's codes: created with its
    first code, the rest added 250 at a time by discountRedeemCodeBulkAdd, which Shopify
    runs later; their answers are read back from the bulk creation."""

    batch = 250

    def __init__(self, connection: StoreConnection):
        base = connection.admin_url.rstrip("/")
        self.url = f"{base}/admin/api/{SHOPIFY_API_VERSION}/graphql.json"
        self.headers = {"X-Shopify-Access-Token": connection.admin_token}

    def _graphql(self, query: str, variables: dict) -> dict:
        answer = _call(
            "POST", self.url, body={"query": query, "variables": variables}, headers=self.headers
        )
        errors = answer.get("errors") or []
        if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
            raise ShopBusy("throttled")
        if errors:
            raise ShopRefused("; ".join(str(e.get("message", e)) for e in errors))
        return answer["data"]

    @staticmethod
    def _user_errors(payload: dict) -> None:
        if payload.get("userErrors"):
            raise ShopRefused(
                "; ".join(
                    f"{'.'.join(e.get('field') or [])}: {e.get('message')}".lstrip(": ")
                    for e in payload["userErrors"]
                )
            )

    def _variant(self, sku: str) -> str:
        data = self._graphql(
            "query($q: String!) { productVariants(first: 1, query: $q) { nodes { id } } }",
            {"q": f"sku:{sku}"},
        )
        nodes = data["productVariants"]["nodes"]
        if not nodes:
            raise ShopRefused(f"No product with the SKU {sku} in the shop.")
        return nodes[0]["id"]

    def settings(self, promotion: Promotion) -> dict:
        starts, ends = _window(promotion)
        combines = not promotion.is_exclusive
        discount = {
            "title": promotion.name[:255],
            "startsAt": _iso(starts),
            "endsAt": _iso(ends),
            "customerSelection": {"all": True},
            "usageLimit": promotion.usage_limit,
            "appliesOncePerCustomer": promotion.per_customer_limit == 1,
            "combinesWith": {
                "orderDiscounts": combines,
                "productDiscounts": combines,
                "shippingDiscounts": combines,
            },
        }
        if promotion.min_spend > 0:
            discount["minimumRequirement"] = {
                "subtotal": {"greaterThanOrEqualToSubtotal": str(promotion.min_spend)}
            }
        if promotion.kind == Kind.FREE_SHIPPING:
            discount["destination"] = {"all": True}
            return {"type": "FreeShipping", "input": discount}
        items: dict = {"all": True}
        if promotion.kind == Kind.PERCENT:
            value: dict = {"percentage": float(promotion.value / Decimal(100))}
        elif promotion.kind == Kind.FIXED_AMOUNT:
            value = {"discountAmount": {"amount": str(promotion.value), "appliesOnEachItem": False}}
        else:  # FREE_PRODUCT
            value = {"percentage": 1.0}
            items = {"products": {"productVariantsToAdd": [self._variant(promotion.product_sku)]}}
        discount["customerGets"] = {"value": value, "items": items}
        return {"type": "Basic", "input": discount}

    def _mutation(self, verb: str, settings: dict) -> tuple[str, str]:
        kind = settings["type"]
        argument = "basicCodeDiscount" if kind == "Basic" else "freeShippingCodeDiscount"
        return f"discountCode{kind}{verb}", argument

    def settings_send(self, push: ShopPush, settings: dict) -> None:
        name, argument = self._mutation("Update", settings)
        data = self._graphql(
            f"mutation($id: ID!, $d: DiscountCode{settings['type']}Input!) "
            f"{{ {name}(id: $id, {argument}: $d) {{ codeDiscountNode {{ id }} "
            "userErrors { field code message } } }",
            {"id": push.remote_id, "d": settings["input"]},
        )
        self._user_errors(data[name])

    def codes_send(self, push: ShopPush, settings: dict, codes: list[Pending]) -> list[Answer]:
        answers = []
        if not push.remote_id:
            first, codes = codes[0], codes[1:]
            name, argument = self._mutation("Create", settings)
            data = self._graphql(
                f"mutation($d: DiscountCode{settings['type']}Input!) "
                f"{{ {name}({argument}: $d) {{ codeDiscountNode {{ id }} "
                "userErrors { field code message } } }",
                {"d": {**settings["input"], "code": first.code}},
            )
            self._user_errors(data[name])
            push.remote_id = data[name]["codeDiscountNode"]["id"]
            # Kept at once with the discount: should the next call fail, a later run must
            # neither make a second discount nor send this code again.
            with transaction.atomic():
                ShopPush.objects.filter(pk=push.pk).update(
                    remote_id=push.remote_id, sent_settings=settings
                )
                ShopCode.objects.get_or_create(
                    code_id=first.pk,
                    connection_id=push.connection_id,
                    defaults={"remote_id": push.remote_id, "confirmed": True},
                )
        if codes:
            data = self._graphql(
                "mutation($id: ID!, $codes: [DiscountRedeemCodeInput!]!) "
                "{ discountRedeemCodeBulkAdd(discountId: $id, codes: $codes) "
                "{ bulkCreation { id } userErrors { field code message } } }",
                {"id": push.remote_id, "codes": [{"code": c.code} for c in codes]},
            )
            payload = data["discountRedeemCodeBulkAdd"]
            self._user_errors(payload)
            bulk = payload["bulkCreation"]["id"]
            answers += [Answer(c.pk, bulk, confirmed=False) for c in codes]
        return answers

    def confirm(self, push: ShopPush) -> None:
        """Reads back each bulk creation still unconfirmed: a code Shopify refused keeps
        its reason. One not yet run by Shopify leaves the task to look again later."""
        waiting = (
            ShopCode.objects.filter(
                connection_id=push.connection_id,
                confirmed=False,
                code__promotion_id=push.promotion_id,
            )
            .values_list("remote_id", flat=True)
            .distinct()
        )
        still = False
        for bulk in list(waiting):
            data = self._graphql(
                "query($id: ID!) { discountRedeemCodeBulkCreation(id: $id) { done "
                "codes(first: 250) { nodes { code errors { message } } } } }",
                {"id": bulk},
            )
            creation = data["discountRedeemCodeBulkCreation"]
            if not creation or not creation["done"]:
                still = True
                continue
            refused = {
                n["code"]: "; ".join(e["message"] for e in n["errors"])[:300]
                for n in creation["codes"]["nodes"]
                if n["errors"]
            }
            with transaction.atomic():
                rows = ShopCode.objects.filter(
                    connection_id=push.connection_id, remote_id=bulk, confirmed=False
                )
                for code, error in refused.items():
                    rows.filter(code__code=code).update(error=error)
                rows.update(confirmed=True)
        if still:
            raise ShopBusy("Shopify is still creating the codes", wait=10)


class WooCommerce:
    """A coupon per code, created and updated 100 at a time through coupons/batch, each
    answered one by one."""

    batch = 100

    def __init__(self, connection: StoreConnection):
        self.url = f"{connection.admin_url.rstrip('/')}/wp-json/wc/v3"
        pair = f"{connection.admin_key}:{connection.admin_token}".encode()
        self.headers = {"Authorization": "Basic " + base64.b64encode(pair).decode()}

    def _product(self, sku: str) -> int:
        found = _call(
            "GET",
            f"{self.url}/products?{urllib.parse.urlencode({'sku': sku})}",
            body=None,
            headers=self.headers,
        )
        if not found:
            raise ShopRefused(f"No product with the SKU {sku} in the shop.")
        return found[0]["id"]

    def settings(self, promotion: Promotion) -> dict:
        _starts, ends = _window(promotion)
        coupon = {
            "description": promotion.name[:255],
            "individual_use": promotion.is_exclusive,
            "usage_limit_per_user": promotion.per_customer_limit,
            "minimum_amount": str(promotion.min_spend) if promotion.min_spend > 0 else "",
            "date_expires_gmt": _iso(ends),
            "free_shipping": promotion.kind == Kind.FREE_SHIPPING,
        }
        if promotion.kind == Kind.PERCENT:
            coupon |= {"discount_type": "percent", "amount": str(promotion.value)}
        elif promotion.kind == Kind.FIXED_AMOUNT:
            coupon |= {"discount_type": "fixed_cart", "amount": str(promotion.value)}
        elif promotion.kind == Kind.FREE_SHIPPING:
            coupon |= {"discount_type": "fixed_cart", "amount": "0"}
        else:  # FREE_PRODUCT
            coupon |= {
                "discount_type": "percent",
                "amount": "100",
                "limit_usage_to_x_items": 1,
                "product_ids": [self._product(promotion.product_sku)],
            }
        single = promotion.codes == Promotion.Codes.UNIQUE
        coupon["usage_limit"] = 1 if single else promotion.usage_limit
        return coupon

    def _batch(self, verb: str, items: list[dict]) -> list[dict]:
        answer = _call(
            "POST", f"{self.url}/coupons/batch", body={verb: items}, headers=self.headers
        )
        return answer.get(verb) or []

    def settings_send(self, push: ShopPush, settings: dict) -> None:
        sent = (
            ShopCode.objects.filter(
                connection_id=push.connection_id, error="", code__promotion_id=push.promotion_id
            )
            .exclude(remote_id="")
            .order_by("pk")
            .values_list("remote_id", flat=True)
        )
        last = 0
        while True:
            chunk = list(sent.filter(pk__gt=last).values_list("pk", "remote_id")[: self.batch])
            if not chunk:
                return
            answers = self._batch("update", [{"id": int(r), **settings} for _pk, r in chunk])
            refused = [a["error"]["message"] for a in answers if a.get("error")]
            if refused:
                raise ShopRefused("; ".join(refused[:3]))
            last = chunk[-1][0]

    def codes_send(self, push: ShopPush, settings: dict, codes: list[Pending]) -> list[Answer]:
        items = [
            {**settings, "code": c.code, **({"email_restrictions": [c.email]} if c.email else {})}
            for c in codes
        ]
        answers = self._batch("create", items)
        if len(answers) != len(codes):
            raise ShopBusy(f"WooCommerce answered {len(answers)} of {len(codes)} coupons")
        return [
            Answer(c.pk, error=a["error"].get("message", "")[:300])
            if a.get("error")
            else Answer(c.pk, str(a["id"]))
            for c, a in zip(codes, answers, strict=True)
        ]

    def confirm(self, push: ShopPush) -> None:
        """WooCommerce answers each coupon at once: nothing to read back."""


SHOPS = {
    StoreConnection.Platform.SHOPIFY: Shopify,
    StoreConnection.Platform.WOOCOMMERCE: WooCommerce,
}


def _claimed(push: ShopPush) -> bool:
    """One guarded statement: this run holds the lease unless another one does."""
    at = now()
    return bool(
        ShopPush.objects.filter(pk=push.pk)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=at))
        .update(claimed_until=at + LEASE)
    )


def _unsent(promotion: Promotion, connection: StoreConnection, how_many: int) -> list[Pending]:
    rows = (
        Code.objects.filter(promotion=promotion)
        .exclude(shop_copies__connection=connection)
        .order_by("pk")
        .values_list("pk", "code", "customer__email")[:how_many]
    )
    return [Pending(pk, code, email or "") for pk, code, email in rows]


def shop_push(*, promotion_id: int, connection_id: int) -> ShopPush | None:
    """Brings the shop up to date with the promotion: its settings when they changed since
    the shop last took them, then every code the shop hasn't answered for, a batch at a
    time, each batch's answers saved before the next is sent. None when there is nothing
    this shop can hold (bonus points are ours alone) or another run holds the lease."""
    promotion = Promotion.objects.get(pk=promotion_id)
    connection = StoreConnection.objects.get(pk=connection_id, merchant_id=promotion.merchant_id)
    if not connection.pushes_codes or promotion.kind == Kind.BONUS_POINTS:
        return None
    push, _made = ShopPush.objects.get_or_create(
        promotion=promotion, connection=connection, defaults={"merchant_id": promotion.merchant_id}
    )
    if not _claimed(push):
        return None
    shop = SHOPS[connection.platform](connection)
    try:
        settings = shop.settings(promotion)
        sent_before = (
            push.remote_id
            or ShopCode.objects.filter(connection=connection, code__promotion=promotion).exists()
        )
        if sent_before and push.sent_settings != settings:
            shop.settings_send(push, settings)
        push.sent_settings = settings
        while codes := _unsent(promotion, connection, shop.batch):
            answers = shop.codes_send(push, settings, codes)
            ShopCode.objects.bulk_create(
                [
                    ShopCode(
                        code_id=a.pk,
                        connection=connection,
                        remote_id=a.remote_id,
                        confirmed=a.confirmed,
                        error=a.error,
                    )
                    for a in answers
                ],
                ignore_conflicts=True,
            )
        ShopPush.objects.filter(pk=push.pk).update(
            remote_id=push.remote_id,
            sent_settings=settings,
            pushed_at=now(),
            error="",
            error_at=None,
        )
        shop.confirm(push)
    except ShopRefused as refusal:
        ShopPush.objects.filter(pk=push.pk).update(error=str(refusal)[:2000], error_at=now())
    finally:
        ShopPush.objects.filter(pk=push.pk).update(claimed_until=None)
    push.refresh_from_db()
    return push


def pushing_connections(*, merchant_id: int) -> list[StoreConnection]:
    """The merchant's live connections that take promotions' codes."""
    live = StoreConnection.objects.filter(merchant_id=merchant_id, revoked_at__isnull=True)
    return [c for c in live.exclude(admin_url="") if c.pushes_codes]


def shop_push_queue(*, promotion: Promotion) -> None:
    """After the caller's transaction commits, a push of this promotion to each shop that
    takes codes (none when the merchant has none)."""
    from campaigns.tasks import shop_push_task

    if promotion.kind == Kind.BONUS_POINTS:
        return
    for connection in pushing_connections(merchant_id=promotion.merchant_id):
        transaction.on_commit(lambda pk=connection.pk: shop_push_task.delay(promotion.pk, pk))
