"""The support console: the Django admin, with an order page that reads like a case.

Thin on purpose: every button calls a service in support/services.py or billing/services.py,
as `support:<email>`; this module gathers input, checks the permission and reports.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from billing import stripe_api
from billing.email_kinds import ONCE_PER_ORDER
from billing.email_kinds import Kind as EmailKind
from billing.errors import BillingError
from billing.models import Order, OrderState
from billing.money import format_money
from billing.services import MONEY_IN_FLIGHT, PAYMENT_CANCELABLE
from billing.tokens import order_status_token
from support import selectors, services
from support.admin_data import CustomerDataActions
from support.forms import (
    AcceptAmountForm,
    ExtendAccessForm,
    RefundAmountForm,
    ReplyForm,
    ReturnedAnotherWayForm,
    first_error,
)
from support.models import Alert, AlertDelivery, InboundAttachment, InboundMessage
from support.timefmt import console_date


class AlertDeliveryInline(admin.TabularInline):
    """Each channel's record: announced when, all-clear when, its tries and last error."""

    model = AlertDelivery
    fields = readonly_fields = ["channel", "sent_at", "cleared_at", "attempts", "next_attempt_at", "last_error"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("support.view_alert")  # part of the alert: who may see it sees this


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Cases raised to the team by the safety nets."""

    inlines = [AlertDeliveryInline]

    list_display = ["created_at", "kind", "summary", "order", "notified_at", "resolved_at"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["summary", "key", "order__reference", "order__email"]
    readonly_fields = [f.name for f in Alert._meta.fields]
    list_select_related = ["order"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _perm(request, codename: str) -> bool:
    return request.user.has_perm(f"support.{codename}")


@admin.register(Order)
class OrderAdmin(CustomerDataActions, admin.ModelAdmin):
    list_display = ["reference", "email", "amount_display", "state", "card_last4", "created_at", "paid_at"]
    list_filter = ["state"]
    search_fields = ["reference", "email", "card_last4", "stripe_payment_intent_id", "stripe_charge_id",
                     "stripe_customer_id"]
    date_hierarchy = "created_at"
    list_per_page = 50
    # What a person needs on a case; internal fields (public id, nonce) stay out of sight.
    fields = ["reference", "state", "renewal", "email", "full_name", "plan", "amount_display", "paid_at", "card_brand",
              "card_last4", "amount_refunded_cents", "attention_reason", "held_since", "refund_deadline_at",
              "stripe_customer_id", "stripe_payment_intent_id", "stripe_charge_id", "created_at", "updated_at"]
    readonly_fields = fields
    change_form_template = "support/order_case.html"
    actions = ["settle_with_stripe", "export_customer_data", "erase_customer"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # nothing on an order is edited by hand; the buttons call services

    def has_delete_permission(self, request, obj=None):
        return False

    def has_recover_permission(self, request):
        return _perm(request, "recover_order")

    @admin.action(description="Recover: check with Stripe and finish (safe to repeat)", permissions=["recover"])
    def settle_with_stripe(self, request, queryset):
        for order in queryset:
            self._recover(request, order)

    # --- the case page -------------------------------------------------------------------------

    def get_urls(self):
        def view(func):
            return self.admin_site.admin_view(func)

        return [
            path("<int:order_id>/recover/", view(self.recover_view), name="billing_order_recover"),
            path("<int:order_id>/refund/", view(self.refund_view), name="billing_order_refund"),
            path("<int:order_id>/accept/", view(self.accept_view), name="billing_order_accept"),
            path("<int:order_id>/returned-another-way/", view(self.returned_another_way_view),
                 name="billing_order_returned_another_way"),
            path("<int:order_id>/resend/", view(self.resend_view), name="billing_order_resend"),
            path("<int:order_id>/note/", view(self.note_view), name="billing_order_note"),
            path("<int:order_id>/signin-link/", view(self.signin_link_view), name="billing_order_signin_link"),
            path("<int:order_id>/extend/", view(self.extend_view), name="billing_order_extend"),
            path("<int:order_id>/claim/", view(self.claim_view), name="billing_order_claim"),
            path("<int:order_id>/cancel-payment/", view(self.cancel_payment_view), name="billing_order_cancel_payment"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = get_object_or_404(Order.objects.select_related("plan", "user"), pk=object_id)
        if self.has_view_permission(request, order):
            services.case_view_record(user=request.user, order_id=order.id)
        status_url = request.build_absolute_uri(
            reverse("billing:status", kwargs={"token": order_status_token(order)}))
        can = {name: _perm(request, code) for name, code in [
            ("recover", "recover_order"), ("refund", "refund_order"), ("resend", "resend_email"),
            ("note", "add_note"), ("extend", "extend_access")]}
        payment_intent = selectors.order_payment_intent(order)  # Stripe read once, for the header and diagnosis
        money = selectors.order_money(order, payment_intent=payment_intent or selectors.NOT_ASKED)
        diagnosis = selectors.order_diagnosis(order, money=money, payment_intent=payment_intent)
        context = {
            "case": order,
            "money": money,
            "diagnosis": diagnosis,
            "timeline": selectors.order_timeline(order),
            "replies": selectors.order_replies(order, agent_name=request.user.get_full_name() or "",
                                               status_url=status_url, diagnosis=diagnosis),
            "can": can,
            "action_key": uuid.uuid4(),
            # What this page shows, carried by the money buttons: refused if a colleague changes the case.
            "case_version": selectors.order_case_version(order.id),
            "colleagues": selectors.case_colleagues(user=request.user, order=order),
            "claim": getattr(order, "support_claim", None),
            "resendable": [e for e in order.emails.all() if e.kind in ONCE_PER_ORDER],
            "refundable": order.state in (OrderState.PAID, OrderState.ACTIVE, OrderState.NEEDS_REVIEW),
            "acceptable": selectors.order_acceptable(order),
            "sent_back": order.refund_sent_back_display if order.refund_sent_back_cents else "",
            "extendable": hasattr(order, "entitlement") and order.entitlement.revoked_at is None,
            "has_account": order.user is not None and not order.user.is_staff,
            "signin_asked": selectors.signin_link_request(order),
            "stripe_url": selectors.stripe_dashboard_url(order.stripe_payment_intent_id or order.reference),
            "payment_cancelable": order.state in PAYMENT_CANCELABLE and order.payment_status not in MONEY_IN_FLIGHT,
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _case(self, request, order_id, permission):
        if not self.has_view_permission(request) or not _perm(request, permission):
            raise PermissionDenied
        return get_object_or_404(Order, pk=order_id)

    def _back(self, order):
        return redirect("admin:billing_order_change", order.pk)

    def _recover(self, request, order):
        try:
            order = services.order_recover(order_id=order.id, user=request.user)
        except (BillingError, stripe_api.StripeError) as exc:
            self.message_user(request, f"{order.reference}: {exc}", messages.ERROR)
        else:
            finished, words = selectors.recover_outcome(order)
            self.message_user(request, words, messages.SUCCESS if finished else messages.WARNING)
            self.log_change(request, order, f"Recover: {order.get_state_display()}")
        return order

    @staticmethod
    def _key(request):
        try:
            return uuid.UUID(request.POST.get("key", ""))
        except ValueError:
            raise PermissionDenied("This form is out of date; reload the page.") from None

    def recover_view(self, request, order_id):
        if request.method != "POST":
            return redirect("admin:billing_order_change", order_id)
        order = self._case(request, order_id, "recover_order")
        self._recover(request, order)
        return self._back(order)

    def refund_view(self, request, order_id):
        """A confirmation page first (amount, its effect on access, a reason), then one refund."""
        order = self._case(request, order_id, "refund_order")
        # What Stripe can still give back: what it took less what it refunded, in its currency.
        remaining, currency = order.refundable_cents, order.paid_currency
        form = RefundAmountForm(request.POST if request.method == "POST" else None, remaining=remaining,
                                currency=currency)
        # What the person saw when they chose to refund: the case page's version, kept through this page.
        seen = request.POST.get("seen") or request.GET.get("seen") or selectors.order_case_version(order.id)
        amount, reason = form.amount_cents(), form.reason_text()
        if form.confirmed:
            return self._money_action(
                request, order,
                lambda: services.order_refund_by_support(order_id=order.id, user=request.user, key=self._key(request),
                                                         reason=reason, seen=seen,
                                                         amount_cents=None if amount == remaining else amount),
                lambda done: f"Refunded {format_money(amount, currency)} — {done.get_state_display()}")
        return TemplateResponse(request, "support/order_refund.html", {
            **self.admin_site.each_context(request),
            "opts": self.model._meta, "case": order, "title": f"Refund {order.reference}",
            "amount": amount, "amount_text": f"{Decimal(amount) / 100:.2f}", "reason": reason, "error": form.error(),
            "amount_display": format_money(amount, currency), "full": amount == remaining,
            "key": request.POST.get("key") or uuid.uuid4(),
            "seen": seen,
            "colleagues": selectors.case_colleagues(user=request.user, order=order),
            "refunded_display": order.refunded_display if order.amount_refunded_cents else "",
            "effect": selectors.refund_effect(order, full=amount == remaining),
        })

    def accept_view(self, request, order_id):
        """Accept what Stripe took (permissioned like Refund): one click, with a reason."""
        return self._money_form(
            request, order_id, AcceptAmountForm,
            lambda order, data, key, seen: services.order_accept_by_support(
                order_id=order.id, user=request.user, key=key, reason=data["reason"], seen=seen),
            lambda done: f"Accepted {done.paid_display} as Stripe took it — {done.get_state_display()}")

    def returned_another_way_view(self, request, order_id):
        """A refund the customer's bank sent back, returned outside Stripe (permissioned like Refund)."""
        return self._money_form(
            request, order_id, ReturnedAnotherWayForm,
            lambda order, data, key, seen: services.order_returned_another_way_by_support(
                order_id=order.id, user=request.user, key=key, how=data["how"], seen=seen),
            lambda done: f"Recorded {done.returned_another_way_display} returned another way")

    def _money_form(self, request, order_id, form_class, call, done):
        """A one-click money button with a reason (permissioned like Refund): POST only, its form
        valid, then `call(order, cleaned_data, key, seen)` once, as `_money_action` runs it."""
        if request.method != "POST":
            return redirect("admin:billing_order_change", order_id)
        order = self._case(request, order_id, "refund_order")
        form = form_class(request.POST)
        if not form.is_valid():
            self.message_user(request, f"{order.reference}: {first_error(form)}", messages.ERROR)
            return self._back(order)
        key, seen = self._key(request), request.POST.get("seen", "")
        return self._money_action(request, order, lambda: call(order, form.cleaned_data, key, seen), done)

    def _money_action(self, request, order, call, done):
        """Refund or Accept, confirmed: run it once and say how it went (a repeat says it was done;
        Stripe's or billing's refusal is shown as it came); the admin's log keeps what was done."""
        try:
            order = call()
        except services.AlreadyDone as exc:
            self.message_user(request, str(exc), messages.WARNING)
        except (BillingError, stripe_api.StripeError) as exc:
            self.message_user(request, f"{order.reference}: {exc}", messages.ERROR)
        else:
            words = done(order)
            self.message_user(request, f"{order.reference}: {words}", messages.SUCCESS)
            self.log_change(request, order, words)
        return self._back(order)

    def _act(self, request, order_id, permission, action, done, form=None):
        """One console button: POST only, permission-checked, its `form` valid, done once; a GET just
        shows the case."""
        if request.method != "POST":
            return redirect("admin:billing_order_change", order_id)
        order = self._case(request, order_id, permission)
        if form is not None and not form.is_valid():
            self.message_user(request, first_error(form), messages.WARNING)
            return self._back(order)
        try:
            result = action(order)
        except (services.AlreadyDone, ValueError) as exc:
            self.message_user(request, str(exc) or "Check the form and try again.", messages.WARNING)
        else:
            self.message_user(request, done(result), messages.SUCCESS)
            # The admin's own log: the team's recent actions on the console's front page.
            self.log_change(request, order, done(result))
        return self._back(order)

    def resend_view(self, request, order_id):
        kind = request.POST.get("kind", EmailKind.CONFIRMATION)
        return self._act(
            request, order_id, "resend_email",
            lambda order: services.outbound_email_resend(order_id=order.id, kind=kind, user=request.user,
                                                         key=self._key(request)),
            lambda email: f"Sending again: {email.get_kind_display()} to {email.recipient}")

    def signin_link_view(self, request, order_id):
        return self._act(
            request, order_id, "resend_email",
            lambda order: services.order_signin_link_send(order_id=order.id, user=request.user,
                                                          key=self._key(request),
                                                          reason=request.POST.get("reason", "")),
            lambda email: f"Sign-in link on its way to {email.recipient}")

    def note_view(self, request, order_id):
        return self._act(
            request, order_id, "add_note",
            lambda order: services.order_note_add(order_id=order.id, user=request.user,
                                                  body=request.POST.get("body", ""), key=self._key(request)),
            lambda note: "Note added.")

    def extend_view(self, request, order_id):
        form = ExtendAccessForm(request.POST)
        return self._act(
            request, order_id, "extend_access",
            lambda order: services.entitlement_extend(order_id=order.id, user=request.user,
                                                      days=form.cleaned_data["days"],
                                                      reason=form.cleaned_data["reason"], key=self._key(request),
                                                      seen=request.POST.get("seen", "")),
            lambda entitlement: f"Access extended to {console_date(entitlement.access_until)}.", form=form)

    def claim_view(self, request, order_id):
        return _claim(self, request, "view_order", order_id=order_id)

    # --- Cancel payment attempt (issue 20): as Recover, it only brings Stripe and the order to an end
    # that takes no money, so the Recover permission covers it.
    def cancel_payment_view(self, request, order_id):
        if request.method != "POST":
            return redirect("admin:billing_order_change", order_id)
        order = self._case(request, order_id, "recover_order")
        try:
            order = services.order_payment_attempt_cancel(order_id=order.id, user=request.user)
        except BillingError as exc:  # PaymentNotCanceled says what Stripe shows
            self.message_user(request, str(exc), messages.ERROR)
        except stripe_api.StripeError as exc:
            self.message_user(request, f"{order.reference}: Stripe did not answer ({exc}). Nothing was canceled "
                                       "here; pressing Cancel again is safe.", messages.ERROR)
        else:
            done = f"{order.reference}: payment attempt canceled in Stripe; nothing was charged."
            self.message_user(request, done, messages.SUCCESS)
            self.log_change(request, order, done)
        return self._back(order)


def _claim(model_admin, request, permission, **case):
    """Claim (or, pressed by its holder, release) a case: "<name> is on it"."""
    if request.method != "POST":
        return redirect(f"admin:{'support_inboundmessage' if 'message_id' in case else 'billing_order'}_change",
                        *case.values())
    if not request.user.has_perm(f"{'support' if 'message_id' in case else 'billing'}.{permission}"):
        raise PermissionDenied
    model = InboundMessage if "message_id" in case else Order
    obj = get_object_or_404(model, pk=next(iter(case.values())))
    # The person pressing is told in the second person; the team's feed reads the log in the
    # third ("Ana Ruiz took the case", selectors.team_feed).
    if request.POST.get("release"):
        services.case_release(user=request.user, **case)
        done, logged = "You are no longer on this case.", "left the case"
    else:
        _, previous = services.case_claim(user=request.user, **case)
        done = "You are on this case" + (f" (taken from {previous.get_full_name()})." if previous else ".")
        logged = "took the case" + (f" over from {previous.get_full_name()}" if previous else "")
    model_admin.message_user(request, done, messages.SUCCESS)
    model_admin.log_change(request, obj, logged)
    return redirect(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", obj.pk)


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    """Support email, matched to orders, with what Backstop did and a reply drafted: the page is
    the case (support/inbound_case.html), with Send reply, Mark answered and Claim."""

    list_display = ["received_at", "from_email", "subject", "status", "claimed", "done_automatically"]
    list_filter = ["status"]
    list_select_related = ["claim__user"]
    search_fields = ["from_email", "from_name", "subject", "body", "orders__reference"]
    fields = ["received_at", "from_name", "from_email", "sender_check", "subject", "linked_orders", "diagnosis",
              "done_automatically", "status", "answered_by", "answered_at"]
    readonly_fields = fields
    change_form_template = "support/inbound_case.html"
    actions = ["mark_answered"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="orders")
    def linked_orders(self, message):
        links = [format_html('<a href="{}">{}</a> ({})', reverse("admin:billing_order_change", args=[o.pk]),
                             o.reference, o.get_state_display()) for o in message.orders.all()]
        return format_html_join(", ", "{}", ((link,) for link in links)) or "none found"

    @admin.display(description="on it")
    def claimed(self, message):
        claim = getattr(message, "claim", None)
        return claim.user.get_full_name() if claim else ""

    @admin.action(description="Mark answered", permissions=["view"])
    def mark_answered(self, request, queryset):
        count = services.inbound_messages_answered(ids=list(queryset.values_list("id", flat=True)),
                                                   user=request.user)
        self.message_user(request, f"{count} marked answered.", messages.SUCCESS)

    def get_urls(self):
        def view(func):
            return self.admin_site.admin_view(func)

        return [
            path("<int:message_id>/reply/", view(self.reply_view), name="support_inboundmessage_reply"),
            path("<int:message_id>/answered/", view(self.answered_view), name="support_inboundmessage_answered"),
            path("<int:message_id>/claim/", view(self.claim_view), name="support_inboundmessage_claim"),
            path("<int:message_id>/attachments/<int:attachment_id>/", view(self.attachment_view),
                 name="support_inboundmessage_attachment"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        message = get_object_or_404(InboundMessage.objects.select_related("answered_by"), pk=object_id)
        if self.has_view_permission(request, message):
            services.case_view_record(user=request.user, message_id=message.id)
        reply = (extra_context or {}).get("reply") or {
            "subject": message.draft_subject or services.reply_subject(message.subject),
            "body": message.draft_body}
        context = {
            "inbound": message,
            "reply": reply,
            "action_key": uuid.uuid4(),
            "case_version": selectors.inbound_case_version(message),
            "colleagues": selectors.case_colleagues(user=request.user, message=message),
            "claim": getattr(message, "claim", None),
            "wait": selectors.first_response(message),
            "target_text": timesince(timezone.now() - settings.SUPPORT_FIRST_RESPONSE),
            "sent_replies": message.replies.select_related("email", "user"),
            "order_links": selectors.inbound_order_links(message),
            "attachments": message.attachments.all(),
            "can_reply": request.user.has_perm("support.reply_inboundmessage"),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=context)

    def reply_view(self, request, message_id):
        """Send reply: the edited draft goes out through the outbox and the email is answered."""
        if request.method != "POST":
            return redirect("admin:support_inboundmessage_change", message_id)
        if not request.user.has_perm("support.reply_inboundmessage"):
            raise PermissionDenied
        message = get_object_or_404(InboundMessage, pk=message_id)
        form = ReplyForm(request.POST)
        if not form.is_valid():
            self.message_user(request, "A reply needs a subject and some words.", messages.ERROR)
            return self._again(request, message, form)
        try:
            reply = services.inbound_message_reply_send(message_id=message.id, user=request.user, **form.cleaned_data)
        except services.CaseChanged as exc:
            self.message_user(request, str(exc).replace("Nothing was done", "Nothing was sent"), messages.WARNING)
            return self._again(request, message, form)
        except (services.AlreadyDone, ValueError) as exc:
            self.message_user(request, str(exc), messages.WARNING)
        else:
            done = f"Reply sent to {reply.email.recipient}: {reply.email.subject}"
            self.message_user(request, f"{done}. Marked answered.", messages.SUCCESS)
            self.log_change(request, message, done)
        return redirect("admin:support_inboundmessage_change", message.id)

    def _again(self, request, message, form):
        """The page again with the person's words kept, and a fresh version: pressing Send now is
        their explicit choice, having read what changed."""
        request.method = "GET"  # the case page is read-only: render it, do not process a change form
        return self.change_view(request, str(message.pk), extra_context={"reply": {
            "subject": form.data.get("subject", ""), "body": form.data.get("body", "")}})

    def answered_view(self, request, message_id):
        if request.method != "POST":
            return redirect("admin:support_inboundmessage_change", message_id)
        if not self.has_view_permission(request):
            raise PermissionDenied
        message = get_object_or_404(InboundMessage, pk=message_id)
        try:
            services.inbound_message_answer(message_id=message.id, user=request.user)
        except services.AlreadyDone as exc:
            self.message_user(request, str(exc), messages.WARNING)
        else:
            self.message_user(request, "Marked answered.", messages.SUCCESS)
            self.log_change(request, message, "Marked answered")
        return redirect("admin:support_inboundmessage_change", message.id)

    def claim_view(self, request, message_id):
        return _claim(self, request, "view_inboundmessage", message_id=message_id)

    def attachment_view(self, request, message_id, attachment_id):
        """A file the customer attached, to staff who may see the case, always as a download: what a
        stranger sent is never rendered in the console's own origin."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        attachment = get_object_or_404(InboundAttachment, pk=attachment_id, message_id=message_id)
        if not attachment.file:
            raise Http404(attachment.not_kept or "This attachment was not kept.")
        return FileResponse(attachment.file.open("rb"), as_attachment=True, filename=attachment.filename,
                            content_type="application/octet-stream")
