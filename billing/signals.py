"""What billing tells the apps built on it. Billing records what happened and says so here; the app
above (support) decides who must hear of it. Billing never imports support.

Receivers run in the sender's transaction, often under an order lock: they write rows and defer
anything slow (emails, chat) to after commit.
"""

from django.dispatch import Signal

# A case a person must look at, once per `key`: kind, key, summary, details, order, email.
# A receiver returns True if this call opened a new case (the sweep counts those).
attention_needed = Signal()

# The order's cases of these `kinds` are over (held money: the customer has service or their money).
attention_over = Signal()

# A sweep pass has ended and its run is recorded: `run` (a ReconcileRun) and its `status` (ok, errors,
# failed). Listeners may watch the sweep's health (billing.selectors.sweep_health) and retry what they
# owe (lost notifications); a receiver returns how many notifications it sent.
sweep_finished = Signal()


def attention(*, kind: str, key: str, summary: str, details: str = "", order=None, email=None) -> bool:
    responses = attention_needed.send(sender=None, kind=kind, key=key, summary=summary, details=details,
                                      order=order, email=email)
    return any(response is True for _receiver, response in responses)

# A customer was erased (billing/services/erasure.py): `plan` (an ErasurePlan: their address, its
# placeholder, names, order ids). Sent inside the erasure's transaction; receivers scrub their own
# rows about the person (support mail) with plan's scrub helpers, in the same transaction.
customer_erased = Signal()
