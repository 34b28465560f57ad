"""Stripe's error JSON, raised as exceptions by handlers and turned into responses by the server."""

from typing import Any


class StripeError(Exception):
    """An error response shaped like Stripe's ``{"error": {...}}``.

    ``saved`` says whether the idempotency layer stores this response. Stripe stores every result
    once an endpoint has started executing, but not parameter-validation failures, auth failures or
    rate limiting, which happen in front of the idempotency layer.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        charge: str | None = None,
        payment_intent: dict | None = None,
        payment_method: dict | None = None,
        advice_code: str | None = None,
        saved: bool = True,
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.charge = charge
        self.payment_intent = payment_intent
        self.payment_method = payment_method
        self.advice_code = advice_code
        self.saved = saved
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {}
        if self.charge:
            error["charge"] = self.charge
        if self.code:
            error["code"] = self.code
            error["doc_url"] = doc_url(self.code)
        if self.advice_code:
            error["advice_code"] = self.advice_code
        if self.decline_code:
            error["decline_code"] = self.decline_code
        error["message"] = self.message
        if self.param:
            error["param"] = self.param
        if self.payment_intent is not None:
            error["payment_intent"] = self.payment_intent
        if self.payment_method is not None:
            error["payment_method"] = self.payment_method
        error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        error["type"] = self.type
        return {"error": error}


def doc_url(code: str) -> str:
    return f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    """A parameter-validation error (400), raised before the endpoint does anything."""
    return StripeError(400, message, param=param, code=code, saved=False)


def missing(kind_label: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(
        404,
        f"No such {kind_label}: '{object_id}'",
        code="resource_missing",
        param=param,
    )


def unrecognized_url(method: str, path: str) -> StripeError:
    return StripeError(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we "
        "can help at https://support.stripe.com/.",
        saved=False,
    )


RATE_LIMITED = (
    "Request rate limit exceeded. You can learn more about rate limits here "
    "https://stripe.com/docs/rate-limits."
)


def rate_limited(reason: str | None = None) -> StripeError:
    """Stripe's 429: code `rate_limit`, in front of the idempotency layer (nothing is saved), with
    the limiter that refused it in `Stripe-Rate-Limited-Reason` and no `Stripe-Should-Retry`
    (which is why stripe-python does not retry it by itself)."""
    return StripeError(429, RATE_LIMITED, code="rate_limit", saved=False,
                       headers={"Stripe-Rate-Limited-Reason": reason} if reason else None)
