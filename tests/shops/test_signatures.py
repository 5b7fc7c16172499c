"""Webhook signatures: Shopify's and WooCommerce's checked on the way in, robodash's own on the
way out, each against a digest computed here independently (hashlib, not the code under test)."""

import base64
import hashlib
import hmac
import re
import time
from pathlib import Path

import pytest

from shops.signatures import base64_hmac_is_valid, sign_webhook, webhook_signature_is_valid

SECRET = "whsec-0b8f1e2d3c4a"
BODY = b'{"id":820982911946154508,"name":"#1001","total_price":"1500.00"}'


def shopify_style(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_a_good_base64_signature_is_accepted():
    assert base64_hmac_is_valid(BODY, shopify_style(BODY, SECRET), SECRET)


@pytest.mark.parametrize(
    "signature",
    [None, "", "not base64 at all", shopify_style(BODY, "another-secret")],
    ids=["missing", "empty", "garbage", "other-secret"],
)
def test_a_missing_or_wrong_base64_signature_is_refused(signature):
    assert not base64_hmac_is_valid(BODY, signature, SECRET)


def test_a_body_changed_by_one_byte_is_refused():
    signature = shopify_style(BODY, SECRET)
    changed = BODY.replace(b"1500.00", b"1500.01")
    assert not base64_hmac_is_valid(changed, signature, SECRET)


def test_no_secret_configured_accepts_nothing():
    assert not base64_hmac_is_valid(BODY, shopify_style(BODY, ""), "")


def test_an_outgoing_signature_is_stripe_style_t_and_v1_over_t_dot_body():
    header = sign_webhook(BODY, SECRET, now=1_790_000_000.7)

    timestamp, v1 = (part.split("=", 1)[1] for part in header.split(","))
    assert header.startswith("t=1790000000,v1=")
    expected = hmac.new(SECRET.encode(), b"1790000000." + BODY, hashlib.sha256).hexdigest()
    assert v1 == expected and timestamp == "1790000000"


def test_a_receiver_accepts_a_fresh_signature_and_refuses_a_replay_or_a_change():
    header = sign_webhook(BODY, SECRET, now=1_790_000_000)

    assert webhook_signature_is_valid(BODY, header, SECRET, now=1_790_000_100)
    assert not webhook_signature_is_valid(BODY, header, SECRET, now=1_790_000_301)  # replayed
    assert not webhook_signature_is_valid(BODY + b" ", header, SECRET, now=1_790_000_000)
    assert not webhook_signature_is_valid(BODY, header, "wrong", now=1_790_000_000)
    assert not webhook_signature_is_valid(BODY, "v1=abc", SECRET, now=1_790_000_000)


def test_the_recipe_in_docs_webhooks_md_verifies_what_robodash_signs():
    docs = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
    recipe = re.search(r"```python\n(.*?)```", docs.read_text(), re.DOTALL)
    assert recipe
    namespace: dict = {}
    exec(recipe[1], namespace)  # the merchant's code, as the page gives it
    verify = namespace["robodash_signature_is_valid"]

    header = sign_webhook(BODY, SECRET, now=time.time())

    assert verify(BODY, header, SECRET)
    assert not verify(BODY + b"x", header, SECRET)
    assert not verify(BODY, sign_webhook(BODY, SECRET, now=time.time() - 600), SECRET)
