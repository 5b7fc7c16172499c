from django.urls import path

from shops import views

urlpatterns = [
    path("hooks/shopify/<int:store_id>/", views.shopify_webhook, name="shopify_webhook"),
    path(
        "hooks/woocommerce/<int:store_id>/", views.woocommerce_webhook, name="woocommerce_webhook"
    ),
]
