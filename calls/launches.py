"""Launching a campaign: the rules, written once for the launch page, its worker and
import_calls.

A launch sends the campaign's new calls: the valid rows of its upload, and the calls already
queued in a never-launched (draft) campaign, which import_calls adds and a refused launch leaves
waiting. It needs a balance that covers them (calls.pipeline.balances.check_launch); a refused
launch leaves the campaign a draft. Once allowed, a draft starts running and the dispatcher is
woken; a running campaign keeps running, and a paused one stays paused: its new calls wait until
a person resumes it. The status itself is written by calls/transitions.py.
"""

from __future__ import annotations

from calls import transitions
from calls.models import Call, Campaign
from calls.pipeline.balances import LaunchCheck, check_launch
from calls.pipeline.dispatch import wake_dispatcher


def waiting_draft_calls(campaign: Campaign) -> int:
    """Calls already queued in a never-launched campaign: a launch releases them too."""
    if campaign.status != Campaign.Status.DRAFT:
        return 0
    return campaign.calls.filter(state=Call.State.QUEUED).count()


def check(campaign: Campaign, new_calls: int) -> LaunchCheck:
    """May `campaign` launch `new_calls` new calls, with the calls already waiting in it?"""
    return check_launch(campaign.store, new_calls + waiting_draft_calls(campaign))


def start(campaign: Campaign) -> bool:
    """Run a draft (True), once its launch is allowed, and wake the dispatcher when the caller's
    transaction commits. A running or paused campaign is left as it is (False)."""
    started = transitions.run_campaign(campaign.pk)
    wake_dispatcher()  # on commit
    return started
