"""Support-console reads: an order as a case, the queue, the search box, inbound email, and two
people on one inbox. No writes here. Callers use `from support import selectors` and the names
below; each lives in the module of its subject:

- common.py: what the others share (Stripe not asked or not reached, the open states, the windows).
- money.py: an order's money as support reads it (order_money) and Stripe's facts about its payment.
- diagnosis.py: what happened to an order and what to do (order_diagnosis).
- paid.py: a paid order's facts the diagnosis and drafts lean on: another payment, the confirmation
  email, the wait for activation, what a refund would do (refund_effect), what Recover left undone.
- timeline.py: everything that happened to an order (order_timeline), links to Stripe's dashboard.
- replies.py: the prefilled replies (order_replies), their words in
  templates/support/replies/ (reply_render).
- queue.py: only what needs a person (needs_attention), and the sweep watched (sweep_notice).
- search.py: the console's search box (console_search) and its parsers (amounts, dates).
- inbound.py: which orders a support email is about, and what its sender may be told.
- collaboration.py: the team's feed, case versions and changes, colleagues, claims, first response.
"""

from support.selectors.collaboration import (
    ACTION_WORDS,
    COLLEAGUE_WINDOW_MINUTES,
    FirstResponse,
    case_colleagues,
    first_response,
    inbound_case_changes,
    inbound_case_version,
    order_case_changes,
    order_case_version,
    queue_claims,
    team_feed,
)
from support.selectors.common import (
    DUPLICATE_PAYMENT_WINDOW_MINUTES,
    NETS_HEAD_START_MINUTES,
    NOT_ASKED,
    OPEN_STATES,
    UNKNOWN,
)
from support.selectors.diagnosis import CANCEL_ATTEMPT, UNFINISHED, Diagnosis, order_diagnosis
from support.selectors.inbound import (
    INBOUND_SCAN_LIMIT,
    SIGNIN_REQUEST_DAYS,
    InboundTokens,
    inbound_order_links,
    inbound_sender_owns,
    inbound_tokens,
    orders_mentioned,
    signin_link_request,
)
from support.selectors.money import (
    OPEN_PAYMENT_LOOKBACK_DAYS,
    Money,
    StripePayment,
    order_money,
    order_payment_intent,
    stripe_payment,
)
from support.selectors.paid import (
    order_acceptable,
    order_other_payments,
    recover_outcome,
    refund_effect,
)
from support.selectors.queue import QueueItem, SweepNotice, needs_attention, sweep_notice
from support.selectors.replies import ANSWERS_ONLY, REPLY_KEYS, Reply, order_replies, reply_render
from support.selectors.search import (
    MIN_PARTIAL_SEARCH,
    SEARCH_STRIPE_READS,
    charges_by_card_last4,
    console_date_hint,
    console_search,
    parse_amount_cents,
    parse_console_date,
)
from support.selectors.timeline import TimelineEntry, order_timeline, stripe_dashboard_url

__all__ = [
    "ACTION_WORDS", "ANSWERS_ONLY", "CANCEL_ATTEMPT", "COLLEAGUE_WINDOW_MINUTES", "DUPLICATE_PAYMENT_WINDOW_MINUTES",
    "INBOUND_SCAN_LIMIT", "MIN_PARTIAL_SEARCH", "NETS_HEAD_START_MINUTES", "NOT_ASKED", "OPEN_PAYMENT_LOOKBACK_DAYS",
    "OPEN_STATES", "REPLY_KEYS", "SEARCH_STRIPE_READS", "SIGNIN_REQUEST_DAYS", "UNFINISHED",
    "UNKNOWN", "Diagnosis", "FirstResponse", "InboundTokens", "Money", "QueueItem", "Reply", "StripePayment",
    "SweepNotice", "TimelineEntry", "case_colleagues", "charges_by_card_last4", "console_date_hint", "console_search",
    "first_response", "inbound_case_changes", "inbound_case_version", "inbound_order_links", "inbound_sender_owns",
    "inbound_tokens", "needs_attention", "order_acceptable", "order_case_changes", "order_case_version",
    "order_diagnosis", "order_money", "order_other_payments", "order_payment_intent", "order_replies",
    "order_timeline", "orders_mentioned", "parse_amount_cents", "parse_console_date", "queue_claims",
    "recover_outcome", "refund_effect", "reply_render", "signin_link_request", "stripe_dashboard_url",
    "stripe_payment", "sweep_notice", "team_feed",
]
