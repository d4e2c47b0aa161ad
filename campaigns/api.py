"""/api/v1/promotions/ endpoints: the checkout asks what a code is worth for a customer
and a cart, holds it, redeems it against an order, lets it go, or gives it back.

Doors only: each parses its body (schemas.py) and calls one service. A refused code is an
answer, not an error: 200 with `accepted: false` and the reason.
"""

from django.http import HttpRequest
from ninja import Router, Status

from campaigns.schemas import (
    CodeAnswerOut,
    CodeCheckIn,
    CodeRedeemIn,
    CodeReleaseIn,
    RollbackOut,
)
from campaigns.services import codes
from customers.api import customer_or_404
from customers.schemas import ErrorOut
from merchants.api import api_merchant, idempotent

router = Router(tags=["promotions"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}


def _cart(payload) -> codes.Cart:
    cart = payload.cart
    return codes.Cart(
        subtotal=cart.subtotal,
        shipping=cart.shipping,
        lines=tuple(codes.CartLine(line.sku, line.price, line.quantity) for line in cart.lines),
        other_codes=tuple(cart.other_codes),
    )


def _answer(merchant, code: str, answer: codes.Answer) -> Status:
    use = answer.use
    return Status(
        200,
        {
            "accepted": answer.accepted,
            "reason": answer.reason,
            "message": answer.message,
            "detail": answer.detail,
            "code": codes.code_normalised(code),
            "discount": f"{answer.discount if answer.accepted else 0:.2f}",
            "currency": merchant.base_currency,
            "bonus_points": answer.bonus_points if answer.accepted else 0,
            "promotion_id": answer.promotion.pk if answer.promotion else None,
            "reserved_until": use.reserved_until.isoformat()
            if use is not None and use.reserved_until
            else None,
        },
    )


@router.post(
    "/promotions/codes/{code}/validate",
    response={200: CodeAnswerOut, **ERRORS},
    summary="What a code is worth for a customer and a cart",
)
def code_validate(request: HttpRequest, code: str, payload: CodeCheckIn):
    """Takes nothing: the answer may change before the order is placed (reserve holds it)."""
    merchant = api_merchant(request, "redeem")
    customer = customer_or_404(merchant, payload.customer.external_id)
    answer = codes.code_validate(merchant=merchant, code=code, customer=customer,
                                 cart=_cart(payload))  # fmt: skip
    return _answer(merchant, code, answer)


@router.post(
    "/promotions/codes/{code}/reserve",
    response={200: CodeAnswerOut, **ERRORS},
    summary="Hold a code for a customer for 15 minutes",
)
@idempotent
def code_reserve(request: HttpRequest, code: str, payload: CodeCheckIn):
    """The hold counts against the promotion's limits and budget until it is redeemed,
    released or 15 minutes have passed; reserving again renews it."""
    merchant = api_merchant(request, "redeem")
    customer = customer_or_404(merchant, payload.customer.external_id)
    answer = codes.code_reserve(merchant=merchant, code=code, customer=customer,
                                cart=_cart(payload))  # fmt: skip
    return _answer(merchant, code, answer)


@router.post(
    "/promotions/codes/{code}/redeem",
    response={200: CodeAnswerOut, **ERRORS},
    summary="Use a code on an order",
)
@idempotent
def code_redeem(request: HttpRequest, code: str, payload: CodeRedeemIn):
    """Turns the customer's hold into the use, or takes a place now; the same order again
    answers the first redemption."""
    merchant = api_merchant(request, "redeem")
    customer = customer_or_404(merchant, payload.customer.external_id)
    answer = codes.code_redeem(merchant=merchant, code=code, customer=customer,
                               cart=_cart(payload),
                               order_external_id=payload.order_external_id)  # fmt: skip
    return _answer(merchant, code, answer)


@router.post(
    "/promotions/codes/{code}/release",
    response={200: CodeAnswerOut, **ERRORS},
    summary="Let go of a customer's hold on a code",
)
@idempotent
def code_release(request: HttpRequest, code: str, payload: CodeReleaseIn):
    merchant = api_merchant(request, "redeem")
    customer = customer_or_404(merchant, payload.customer.external_id)
    answer = codes.code_release(merchant=merchant, code=code, customer=customer)
    return _answer(merchant, code, answer)


@router.post(
    "/promotions/orders/{order_external_id}/rollback",
    response={200: RollbackOut, **ERRORS},
    summary="Give back the codes an order used",
)
@idempotent
def codes_roll_back(request: HttpRequest, order_external_id: str):
    """For an order cancelled or refunded outside the order webhooks and API; a second call
    gives back nothing more."""
    merchant = api_merchant(request, "redeem")
    rolled_back = codes.codes_roll_back(merchant=merchant, order_external_id=order_external_id)
    return Status(200, {"rolled_back": rolled_back})
