from django.urls import path

from . import views

app_name = "packages"

urlpatterns = [
    path("tutor/packages/", views.tutor_packages, name="tutor-packages"),
    path("tutor/packages/<int:pk>/", views.tutor_package_edit, name="tutor-package"),
    path("tutor/packages/purchases/<uuid:pk>/", views.tutor_purchase, name="tutor-purchase"),
    path("t/<slug:slug>/packages/", views.on_sale, name="on-sale"),
    path("p/pay/<uuid:payment_id>/", views.simulated_checkout, name="simulated"),
    path("p/<str:token>/", views.purchase_page, name="purchase"),
]
