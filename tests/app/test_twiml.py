"""TwiML from twilio's builders: exact documents, and always one well-formed element whatever the text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from shared import twiml

XML = '<?xml version="1.0" encoding="UTF-8"?>'
HOSTILE = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()),
) | st.sampled_from(["]]>", "<Say>x</Say>", "&amp;", "\"'<>&", "\x00\x01\x1b", "\ud800", "\ufffe", "<!--", "<?xml"])


def test_say_renders_the_message_with_voice_and_language() -> None:
    assert twiml.say("Hello Monkey!", voice="alice", language="en-GB") == (
        f'{XML}<Response><Say language="en-GB" voice="alice">Hello Monkey!</Say></Response>'
    )


def test_reply_renders_one_message() -> None:
    assert twiml.reply("Thanks & bye") == f"{XML}<Response><Message>Thanks &amp; bye</Message></Response>"


def test_characters_xml_cannot_carry_are_replaced() -> None:
    assert twiml.reply("a\x00b\x1bc") == f"{XML}<Response><Message>a\ufffdb\ufffdc</Message></Response>"


def _only_child(document: str, tag: str) -> ET.Element:
    root = ET.fromstring(document.encode("utf-8"))
    assert root.tag == "Response"
    (child,) = list(root)
    assert child.tag == tag
    assert list(child) == []
    return child


@settings(max_examples=500)
@given(HOSTILE)
def test_any_message_is_one_well_formed_say(message: str) -> None:
    say = _only_child(twiml.say(message), "Say")
    assert say.text == _readable(message) or (say.text is None and _readable(message) == "")


@settings(max_examples=500)
@given(HOSTILE)
def test_any_reply_is_one_well_formed_message(body: str) -> None:
    message = _only_child(twiml.reply(body), "Message")
    assert (message.text or "") == _readable(body)


def _readable(text: str) -> str:
    """What an XML parser reads back: XML-illegal characters replaced, line ends normalised."""
    kept = "".join(
        c if c in "\t\n\r" or "\x20" <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd" or c >= "\U00010000" else "\ufffd"
        for c in text
    )
    return kept.replace("\r\n", "\n").replace("\r", "\n")
