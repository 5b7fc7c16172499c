"""Reading a page as its reader would, for the tests that use Django's test client."""

import html


def text_of(response) -> str:  # type: ignore[no-untyped-def]
    """The page as a reader sees its text: entities decoded, no-break spaces as spaces."""
    return html.unescape(response.content.decode()).replace("\xa0", " ")
