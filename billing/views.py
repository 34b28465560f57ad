from django.shortcuts import render

from billing.models import Plan


def home(request):
    plan = Plan.objects.filter(is_active=True).order_by("amount_cents").first()
    return render(request, "billing/home.html", {"plan": plan})
