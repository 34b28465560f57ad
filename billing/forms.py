from django import forms


class OrderLookupForm(forms.Form):
    email = forms.EmailField(label="Email you paid with", max_length=254)
    last4 = forms.RegexField(label="Last 4 digits of the card (optional)", regex=r"^\d{4}$", required=False,
                             error_messages={"invalid": "Enter exactly four digits, or leave it empty."})
