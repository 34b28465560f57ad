from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("", views.home, name="home"),
    path("checkout/", views.checkout, name="checkout"),
    path("checkout/<str:token>/pay/", views.pay, name="pay"),
    path("orders/lookup/", views.lookup, name="lookup"),
    path("orders/<str:token>/", views.status, name="status"),
    path("orders/<str:token>/refund/", views.refund_now, name="refund-now"),
    path("orders/<str:token>/receipt/", views.receipt, name="receipt"),
    path("orders/<str:token>/receipt.pdf", views.receipt_pdf, name="receipt-pdf"),
    path("orders/<str:token>/signin/", views.status_signin, name="status-signin"),
    path("api/orders/<str:token>/status", views.OrderStatusAPI.as_view(), name="status-api"),
]
