from django.urls import path

from calls.views import calls, campaigns, followups, orders, overview, reports, settings

urlpatterns = [
    # Django's sign-in, landing an agent on the follow-up queue (followups.SignInView).
    path("accounts/login/", followups.SignInView.as_view(), name="login"),
    path("", overview.overview, name="overview"),
    path("overview/balances/", overview.balances, name="overview_balances"),
    path("calls/", calls.call_list, name="call_list"),
    path("calls/export.csv", calls.call_export, name="call_export"),
    path("calls/export.xlsx", calls.call_export, {"as_xlsx": True}, name="call_export_xlsx"),
    path("calls/<int:pk>/", calls.call_detail, name="call_detail"),
    path("calls/<int:pk>/row/", calls.call_row, name="call_row"),
    path("calls/<int:pk>/call-again/", calls.call_again, name="call_again"),
    path("calls/<int:pk>/withdraw/", calls.call_withdraw, name="call_withdraw"),
    path("orders/<int:pk>/", orders.order_detail, name="order_detail"),
    path("orders/<int:pk>/decide/", orders.order_decide, name="order_decide"),
    path("orders/<int:pk>/call-again/", orders.order_call_again, name="order_call_again"),
    path("orders/<int:pk>/claim/", followups.followup_claim, name="followup_claim"),
    path("orders/<int:pk>/release/", followups.followup_release, name="followup_release"),
    path("orders/<int:pk>/take-over/", followups.followup_take_over, name="followup_take_over"),
    path("orders/<int:pk>/handled/", followups.followup_handled, name="followup_handled"),
    path("orders/<int:pk>/callback/", followups.followup_callback, name="followup_callback"),
    path("orders/<int:pk>/phone/", orders.order_phone, name="order_phone"),
    path("followups/", followups.followup_list, name="followup_list"),
    path("followups/next/", followups.followup_next, name="followup_next"),
    path("campaigns/", campaigns.campaign_list, name="campaign_list"),
    path("campaigns/new/", campaigns.campaign_new, name="campaign_new"),
    path("campaigns/new/order/", campaigns.campaign_single_order, name="campaign_single_order"),
    path("campaigns/new/upload/", campaigns.campaign_upload, name="campaign_upload"),
    path("campaigns/<int:pk>/", campaigns.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:pk>/progress/", campaigns.campaign_progress, name="campaign_progress"),
    path("campaigns/<int:pk>/launch/", campaigns.campaign_launch, name="campaign_launch"),
    path(
        "campaigns/<int:pk>/upload/rejected.csv",
        campaigns.campaign_upload_rejected,
        name="campaign_upload_rejected",
    ),
    path("campaigns/<int:pk>/pause/", campaigns.campaign_pause, name="campaign_pause"),
    path("campaigns/<int:pk>/resume/", campaigns.campaign_resume, name="campaign_resume"),
    path("reports/", reports.report, name="reports"),
    path("reports/export.csv", reports.report_export, name="report_export"),
    path(
        "reports/export.xlsx", reports.report_export, {"as_xlsx": True}, name="report_export_xlsx"
    ),
    path("settings/", settings.settings_index, name="settings"),
    path("settings/stores/new/", settings.store_new, name="store_new"),
    path("settings/stores/<int:pk>/", settings.store_edit, name="store_edit"),
    path("settings/stores/<int:pk>/verify/", settings.store_verify, name="store_verify"),
    path("settings/users/new/", settings.user_new, name="user_new"),
    path("settings/users/<int:pk>/", settings.user_edit, name="user_edit"),
]
