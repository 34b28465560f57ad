"""A small stand-in for the product customers pay for, at /app/: it opens only with paid access, so
the demo shows the whole story (pay, the product opens; a refund, it closes). A real product puts
its own views behind the same decorator or mixin (docs/integrating.md)."""

from django.views.generic import TemplateView

from accounts.access import access_until
from accounts.decorators import AccessRequiredMixin


class ProductHome(AccessRequiredMixin, TemplateView):
    template_name = "app/home.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "access_until": access_until(self.request.user)}
