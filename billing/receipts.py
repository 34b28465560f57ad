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
from fpdf import FPDF
from fpdf.enums import XPos, YPos

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


class _ReceiptPDF(FPDF):
    def __init__(self):
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.core_fonts_encoding = _ENCODING
        self.set_auto_page_break(auto=True, margin=20)
        self.set_margins(20, 20, 20)

    def text_line(self, text: str, *, size: float = 10, style: str = "", height: float = 5.5):
        self.set_font("helvetica", style=style, size=size)
        self.multi_cell(0, height, pdf_text(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def amount_row(self, label: str, amount: str, *, style: str = "", rule: bool = False):
        """A label (wrapped if long) with its amount to the right, on the label's first line."""
        if rule:
            self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
            self.ln(1.5)
        self.set_font("helvetica", style=style, size=10)
        amount_width = 40
        top = self.get_y()
        self.multi_cell(self.epw - amount_width - 5, 7, pdf_text(label), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        bottom = self.get_y()
        self.set_xy(self.w - self.r_margin - amount_width, top)
        self.cell(amount_width, 7, pdf_text(amount), align="R")
        self.set_xy(self.l_margin, bottom)


def receipt_pdf(receipt: Receipt) -> bytes:
    """The receipt as a one-page PDF, saying what the HTML receipt says."""
    pdf = _ReceiptPDF()
    pdf.set_title(pdf_text(f"Receipt {receipt.reference}"))
    pdf.set_author(pdf_text(receipt.seller_name))
    pdf.add_page()

    pdf.text_line("Receipt", size=20, style="B", height=10)
    pdf.text_line(f"Reference {receipt.reference} · Paid {_date(receipt.paid_at)}")
    pdf.ln(5)

    pdf.text_line("From", style="B")
    pdf.text_line(receipt.seller_name)
    for line in receipt.seller_address:
        pdf.text_line(line)
    pdf.ln(4)

    pdf.text_line("Billed to", style="B")
    for line in (receipt.buyer_name, receipt.company_name,
                 f"VAT number {receipt.vat_number}" if receipt.vat_number else "", receipt.buyer_email):
        if line:
            pdf.text_line(line)
    pdf.ln(6)

    pdf.amount_row("Description", "Amount", style="B")
    pdf.amount_row(receipt.description, receipt.amount_paid, rule=True)
    if receipt.period:
        pdf.text_line(receipt.period, size=9)
    for refund in receipt.refunds:
        label = f"Refund on {_date(refund.refunded_at)}" if refund.refunded_at else "Refunded"
        pdf.amount_row(label + (" (on its way)" if refund.in_progress else ""), f"-{refund.amount}")
    if receipt.refunds:
        pdf.amount_row("Net paid", receipt.net_amount, style="B", rule=True)
    else:
        pdf.amount_row("Total paid", receipt.amount_paid, style="B", rule=True)
    pdf.ln(6)

    if receipt.card:
        pdf.text_line(f"Paid with {receipt.card} on {_date(receipt.paid_at)}.")
    if receipt.statement_descriptor:
        pdf.text_line(f"On your bank statement: {receipt.statement_descriptor}")
    pdf.ln(4)
    pdf.text_line("One payment, no automatic renewal: you are never charged again unless you buy again.",
                  size=9)
    return bytes(pdf.output())
