"""Receipts: what one payment's receipt says (built by billing.selectors.order_receipt from the
order and Stripe's figures on it), and the same as a PDF.

The PDF is drawn by fpdf2 with a core font (Helvetica) in Windows-1252, so it needs no font
files: that covers English and most Western European names, "€" and "£" included. Anything
outside it is written as its nearest plain letter ("Ł" → "L") or "?", never an error; the HTML
receipt shows every name exactly as typed.
"""

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

_ENCODING = "windows-1252"
# Letters Unicode does not decompose into a base letter plus accents.
_PLAIN = str.maketrans({"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i", "ĸ": "k",
                        "Ŀ": "L", "ŀ": "l", "Ŧ": "T", "ŧ": "t", "ẞ": "SS", "−": "-", "\u00a0": " "})


@dataclass(frozen=True)
class ReceiptRefund:
    refunded_at: datetime | None  # Stripe's time; None for an amount Stripe reports without its refund
    amount: str  # formatted, in the payment's currency
    in_progress: bool  # Stripe has it but the money is not back yet


@dataclass(frozen=True)
class Receipt:
    reference: str
    seller_name: str
    seller_address: tuple[str, ...]
    buyer_name: str
    buyer_email: str
    company_name: str
    vat_number: str
    description: str
    paid_at: datetime
    amount_paid: str  # what Stripe took, in Stripe's currency
    card: str  # "Visa ending in 4242", or empty
    statement_descriptor: str  # the line on the bank statement, or empty
    refunds: tuple[ReceiptRefund, ...]
    amount_refunded: str  # empty when nothing was refunded
    net_amount: str
    # The period this payment's access covers, in words ("December 5, 2026 to December 5, 2027"),
    # or what is true instead (taken back, not started); empty when there is nothing to say.
    period: str = ""


def pdf_text(text: str) -> str:
    """`text` as the core font can draw it: itself where Windows-1252 has it, else its plain letter."""
    text = unicodedata.normalize("NFC", text).translate(_PLAIN)
    out = []
    for char in text:
        try:
            char.encode(_ENCODING)
        except UnicodeEncodeError:
            base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
            try:
                base.encode(_ENCODING)
            except UnicodeEncodeError:
                base = ""
            char = base or "?"
        out.append(char)
    return "".join(out)


def _date(moment: datetime) -> str:
    moment = timezone.localtime(moment)
    return f"{moment:%B} {moment.day}, {moment:%Y}"


def _new_pdf():
    # Imported here, not at the top: fpdf2 imports fontTools and Pillow, a third of a second that
    # every process importing billing (each web and task worker, each cron command) would pay at
    # start for a receipt it may never draw.
    from fpdf import FPDF

    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.core_fonts_encoding = _ENCODING
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_margins(20, 20, 20)
    return pdf


def _text_line(pdf, text: str, *, size: float = 10, style: str = "", height: float = 5.5):
    pdf.set_font("helvetica", style=style, size=size)
    pdf.multi_cell(0, height, pdf_text(text), new_x="LMARGIN", new_y="NEXT")


def _amount_row(pdf, label: str, amount: str, *, style: str = "", rule: bool = False):
    """A label (wrapped if long) with its amount to the right, on the label's first line."""
    if rule:
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
        pdf.ln(1.5)
    pdf.set_font("helvetica", style=style, size=10)
    amount_width = 40
    top = pdf.get_y()
    pdf.multi_cell(pdf.epw - amount_width - 5, 7, pdf_text(label), new_x="LMARGIN", new_y="NEXT")
    bottom = pdf.get_y()
    pdf.set_xy(pdf.w - pdf.r_margin - amount_width, top)
    pdf.cell(amount_width, 7, pdf_text(amount), align="R")
    pdf.set_xy(pdf.l_margin, bottom)


def receipt_pdf(receipt: Receipt) -> bytes:
    """The receipt as a one-page PDF, saying what the HTML receipt says."""
    pdf = _new_pdf()
    pdf.set_title(pdf_text(f"Receipt {receipt.reference}"))
    pdf.set_author(pdf_text(receipt.seller_name))
    pdf.add_page()

    _text_line(pdf, "Receipt", size=20, style="B", height=10)
    _text_line(pdf, f"Reference {receipt.reference} · Paid {_date(receipt.paid_at)}")
    pdf.ln(5)

    _text_line(pdf, "From", style="B")
    _text_line(pdf, receipt.seller_name)
    for line in receipt.seller_address:
        _text_line(pdf, line)
    pdf.ln(4)

    _text_line(pdf, "Billed to", style="B")
    for line in (receipt.buyer_name, receipt.company_name,
                 f"VAT number {receipt.vat_number}" if receipt.vat_number else "", receipt.buyer_email):
        if line:
            _text_line(pdf, line)
    pdf.ln(6)

    _amount_row(pdf, "Description", "Amount", style="B")
    _amount_row(pdf, receipt.description, receipt.amount_paid, rule=True)
    if receipt.period:
        _text_line(pdf, receipt.period, size=9)
    for refund in receipt.refunds:
        label = f"Refund on {_date(refund.refunded_at)}" if refund.refunded_at else "Refunded"
        _amount_row(pdf, label + (" (on its way)" if refund.in_progress else ""), f"-{refund.amount}")
    if receipt.refunds:
        _amount_row(pdf, "Net paid", receipt.net_amount, style="B", rule=True)
    else:
        _amount_row(pdf, "Total paid", receipt.amount_paid, style="B", rule=True)
    pdf.ln(6)

    if receipt.card:
        _text_line(pdf, f"Paid with {receipt.card} on {_date(receipt.paid_at)}.")
    if receipt.statement_descriptor:
        _text_line(pdf, f"On your bank statement: {receipt.statement_descriptor}")
    pdf.ln(4)
    _text_line(pdf, "One payment, no automatic renewal: you are never charged again unless you buy again.",
                  size=9)
    return bytes(pdf.output())
