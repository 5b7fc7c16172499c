from django.urls import URLPattern, URLResolver, path

from shops import views
from shops.api import api

api_patterns, api_app, api_namespace = api.urls
for pattern in api_patterns:
    # The API authenticates by bearer token, not by the sign-in page's session.
    if isinstance(pattern, URLPattern | URLResolver) and hasattr(pattern, "callback"):
        pattern.callback.login_required = False  # type: ignore[union-attr]

urlpatterns = [
    path("write-backs/<int:pk>/retry/", views.write_back_retry, name="write_back_retry"),
    path("api/v1/", (api_patterns, api_app, api_namespace)),
    path("hooks/shopify/<int:store_id>/", views.shopify_webhook, name="shopify_webhook"),
    path(
        "hooks/woocommerce/<int:store_id>/", views.woocommerce_webhook, name="woocommerce_webhook"
    ),
]
