from django.urls import path

from . import api

app_name = "packages-api"

urlpatterns = [
    path("<int:pk>/buy/", api.PackageBuyView.as_view(), name="buy"),
    path("<str:token>/", api.PurchaseDetailView.as_view(), name="purchase"),
    path("<str:token>/bookings/", api.PurchaseBookingView.as_view(), name="purchase-bookings"),
]
