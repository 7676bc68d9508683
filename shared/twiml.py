"""TwiML documents, built with twilio's own builders so that text is always escaped."""

from __future__ import annotations

import re

# XML 1.0 cannot carry these at all, escaped or not; the builders would emit them raw.
# (Written as the characters to drop: a class of those to keep takes ten times longer to compile.)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def say(message: str, voice: str | None = None, language: str | None = None) -> str:
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    response.say(_xml_text(message), voice=voice, language=language)
    return str(response)


def reply(body: str) -> str:
    from twilio.twiml.messaging_response import MessagingResponse

    response = MessagingResponse()
    response.message(_xml_text(body))
    return str(response)


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
