from django.urls import path

from . import views

app_name = "payments"

urlpatterns = [
    path("stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
    path("return/<str:token>/", views.checkout_return, name="return"),
    path("simulated/<uuid:payment_id>/", views.simulated_checkout, name="simulated"),
]
