from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from robodash import language
from robodash.sign_in import SignInView

urlpatterns = [
    # Django's sign-in, landing an agent on the follow-up queue and keeping a language chosen
    # on its page (robodash/sign_in.py).
    path("accounts/login/", SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # Django's set_language, wrapped to save a signed-in user's choice (robodash/language.py).
    path("i18n/setlang/", language.set_language, name="set_language"),
    path("", include("shops.urls")),
    path("", include("calls.urls")),
]

# A request that met PostgreSQL away is a 503 with Retry-After (robodash/server_errors.py).
handler500 = "robodash.server_errors.server_error"
