"""Hostile values in every GET parameter of every page and export, for each role: never a 5xx.

A bad value is a 400 or the page with a form error; the sweep asserts only that nothing
answers 5xx (the pages' own tests check what they say). Each parameter is swept on its own,
the others staying valid, so a value reaches the code behind that one parameter.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLPattern

from calls import urls as calls_urls
from tests.calls import test_permissions

pytestmark = pytest.mark.django_db

# Already percent-encoded where the raw bytes matter (non-UTF-8, NUL, control characters).
HOSTILE = [
    quote("9999-12-31"),
    quote("0001-01-01"),
    quote("275760-09-13"),
    quote("2026-02-30"),
    quote("-1"),
    quote("-99999999999999999999"),
    quote("99999999999999999999"),
    quote("1e308"),
    "NaN",
    "%00",
    "2026-01-01%00",
    "%01%1b%7f",
    "%ff%fe%c3%28",
    quote("a" * 5000),
    quote("' OR 1=1 --"),
    quote('"><script>alert(1)</script>'),
    quote("../../../etc/passwd"),
    quote("٢٠٢٦-٠١-٠١"),  # Arabic-Indic digits
    quote("\u202e\ufeff"),
    "",
]

# A valid query each page starts from: the reports need both dates.
VALID = {
    "reports": {"date_from": "2026-01-01", "date_to": "2026-01-31", "period": "day"},
    "report_export": {"date_from": "2026-01-01", "date_to": "2026-01-31", "group": "period"},
    "report_export_xlsx": {"date_from": "2026-01-01", "date_to": "2026-01-31", "group": "period"},
}
CALL_FILTERS = ["store", "campaign", "state", "outcome", "date_from", "date_to", "q"]
# URL name -> the GET parameters its view reads (plus a stray one every page must ignore).
PARAMETERS: dict[str, list[str]] = {
    "call_list": [*CALL_FILTERS, "before", "after"],
    "call_export": CALL_FILTERS,
    "call_export_xlsx": CALL_FILTERS,
    "followup_list": ["outcome", "who", "after"],
    "campaign_list": ["page"],
    "campaign_launch": ["page"],
    "reports": ["store", "date_from", "date_to", "period"],
    "report_export": ["store", "date_from", "date_to", "period", "group"],
    "report_export_xlsx": ["store", "date_from", "date_to", "period", "group"],
}
GET_PAGES = [
    "overview",
    "call_list",
    "call_export",
    "call_export_xlsx",
    "call_detail",
    "call_row",
    "followup_list",
    "order_detail",
    "campaign_list",
    "campaign_new",
    "campaign_detail",
    "campaign_progress",
    "campaign_launch",
    "campaign_upload_rejected",
    "reports",
    "report_export",
    "report_export_xlsx",
    "settings",
    "store_edit",
    "user_new",
    "user_edit",
]


def test_the_sweep_covers_every_page_that_answers_get():
    named = {p.name for p in calls_urls.urlpatterns if isinstance(p, URLPattern)}
    # Actions are POST-only; the balances fragment asks the provider (its own tests cover it).
    post_only = {
        "call_again",
        "call_withdraw",
        "call_handled",
        "call_claim",
        "call_release",
        "call_take_over",
        "order_decide",
        "campaign_single_order",
        "campaign_upload",
        "campaign_pause",
        "campaign_resume",
        "store_new",
        "store_verify",
        "overview_balances",
    }
    assert named - post_only == set(GET_PAGES)


# The permission tests' objects and personas: a store, a campaign, a final call, each role.
world = test_permissions.world


def queries(name: str) -> list[str]:
    """Every query string of the sweep for page `name`: one hostile value in one parameter."""
    valid = VALID.get(name, {})
    parameters = PARAMETERS.get(name, [])
    result = []
    if "date_from" in parameters:  # both ends of the range at once (e.g. far in the future)
        rest = "&".join(f"{k}={quote(v)}" for k, v in valid.items() if not k.startswith("date_"))
        result += [f"{rest}&date_from={value}&date_to={value}" for value in HOSTILE]
    for parameter in [*parameters, "zz"]:
        rest = "&".join(f"{k}={quote(v)}" for k, v in valid.items() if k != parameter)
        arrays = [f"{parameter}[]=1&{parameter}[]=2", f"{parameter}=1&{parameter}=9999-12-31"]
        for hostile in [*(f"{parameter}={value}" for value in HOSTILE), *arrays]:
            result.append("&".join(part for part in (rest, hostile) if part))
    return result


# An .xlsx export is its CSV twin's view with another writer: its parameters are read by the
# same code, swept above for every role. Building a workbook per query is slow, so the twins are
# swept once, as a manager (who may export).
XLSX_TWINS = {"call_export_xlsx", "report_export_xlsx"}
SWEEP = [
    (name, persona)
    for name in GET_PAGES
    for persona in ("admin", "agent", "manager")
    if name not in XLSX_TWINS or persona == "manager"
]


@pytest.mark.parametrize(("name", "persona"), SWEEP)
def test_no_hostile_get_parameter_makes_a_page_fail(world, persona, name):
    client = Client(raise_request_exception=False)
    client.force_login(world[persona])
    path = test_permissions.url_for(name, world)

    failures = []
    for query in queries(name):
        response = client.get(f"{path}?{query}")
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {path}?{query[:120]}")
    assert not failures, "\n".join(failures)


def test_a_day_past_2099_is_a_form_error_on_the_calls_and_reports(client: Client, admin_user):
    client.force_login(admin_user)
    far = "date_from=9999-12-31&date_to=9999-12-31"
    message = "Choose a day between 2000-01-01 and 2099-12-31."

    calls = client.get(f"/calls/?{far}")
    assert calls.status_code == 200  # the list, unfiltered by the bad field, with its error
    assert message in calls.content.decode()
    for path in ("/calls/export.csv", "/reports/", "/reports/export.csv"):
        response = client.get(f"{path}?{far}")
        assert response.status_code == 400, path
        assert message in response.content.decode(), path
