class BillingError(Exception):
    """A billing operation cannot go ahead; the message is safe to show to staff."""


class InvalidTransition(BillingError):
    def __init__(self, order, to_state):
        super().__init__(f"Order {order.reference} cannot go from {order.state} to {to_state}.")
        self.order = order
        self.to_state = to_state


class PaymentSetupFailed(BillingError):
    """Stripe could not be reached or refused to set up the payment; nothing was charged."""


class RefundFailed(BillingError):
    """Stripe did not confirm a refund; the order says so and the sweep will try again."""


class PaymentNotCanceled(BillingError):
    """Stripe shows money taken or on its way, so the payment attempt was not canceled; the
    order was settled instead (the message says what Stripe shows)."""

    def __init__(self, message, order):
        super().__init__(message)
        self.order = order


class CustomerErased(BillingError):
    """The customer a Stripe payment belonged to was erased: nothing of theirs is made again."""


class ErasureRefused(BillingError):
    """A customer cannot be erased yet: money of theirs is still moving or held."""
