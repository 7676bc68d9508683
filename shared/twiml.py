"""TwiML documents, built with twilio's own builders so that text is always escaped."""

from __future__ import annotations

import re

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

# XML 1.0 cannot carry these at all, escaped or not; the builders would emit them raw.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def say(message: str, voice: str | None = None, language: str | None = None) -> str:
    response = VoiceResponse()
    response.say(_xml_text(message), voice=voice, language=language)
    return str(response)


def reply(body: str) -> str:
    response = MessagingResponse()
    response.message(_xml_text(body))
    return str(response)


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
