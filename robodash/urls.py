from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from robodash import language

urlpatterns = [
    # accounts/login/ is calls.urls': the sign-in that lands each role where its work is.
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # Django's set_language, wrapped to save a signed-in user's choice (robodash/language.py).
    path("i18n/setlang/", language.set_language, name="set_language"),
    path("", include("shops.urls")),
    path("", include("calls.urls")),
]
