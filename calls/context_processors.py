from django.http import HttpRequest


def navigation(request: HttpRequest) -> dict[str, object]:
    """The open follow-up count shown in the navigation, for users who work the queue."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.role == "manager":
        return {}
    from calls.models import Call

    count = Call.objects.filter(
        outcome__in=Call.FOLLOW_UP_OUTCOMES, handled_at__isnull=True
    ).count()
    return {"open_followups": count}
