from django.urls import URLPattern, URLResolver, path

from shops import settings_views, views
from shops.api import api

api_patterns, api_app, api_namespace = api.urls
for pattern in api_patterns:
    # The API authenticates by bearer token, not by the sign-in page's session.
    if isinstance(pattern, URLPattern | URLResolver) and hasattr(pattern, "callback"):
        pattern.callback.login_required = False  # type: ignore[union-attr]

urlpatterns = [
    path(
        "settings/stores/<int:pk>/integrations/",
        settings_views.integrations,
        name="store_integrations",
    ),
    path(
        "settings/stores/<int:pk>/integrations/tokens/",
        settings_views.api_token_new,
        name="api_token_new",
    ),
    path(
        "settings/stores/<int:pk>/integrations/test-order/",
        settings_views.send_test_order,
        name="send_test_order",
    ),
    path(
        "settings/api-tokens/<int:pk>/revoke/",
        settings_views.api_token_revoke,
        name="api_token_revoke",
    ),
    path("write-backs/<int:pk>/retry/", views.write_back_retry, name="write_back_retry"),
    path("api/v1/", (api_patterns, api_app, api_namespace)),
    path("hooks/shopify/<int:store_id>/", views.shopify_webhook, name="shopify_webhook"),
    path(
        "hooks/woocommerce/<int:store_id>/", views.woocommerce_webhook, name="woocommerce_webhook"
    ),
]
