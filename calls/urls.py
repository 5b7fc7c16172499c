from django.urls import path

from calls.views import calls as call_views

urlpatterns = [
    path("", call_views.call_list, name="overview"),
    path("calls/", call_views.call_list, name="call_list"),
]
