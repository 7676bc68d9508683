"""The sandbox's page: calls and texts as a timeline, newest first, with what each said and why
any failed."""

from __future__ import annotations

import html
import string
from datetime import datetime
from pathlib import Path

from devtools.sandbox.resources import Call, Message, Said

PAGE = Path(__file__).resolve().parent / "page.html"


def render_page(resources: list[Call | Message]) -> str:
    items = sorted(resources, key=lambda resource: resource.created, reverse=True)
    timeline = "\n".join(_article(item) for item in items) or '<p class="empty">No call or text yet.</p>'
    return string.Template(PAGE.read_text(encoding="utf-8")).substitute(timeline=timeline)


def _article(resource: Call | Message) -> str:
    e = html.escape
    kind = "call" if isinstance(resource, Call) else "text"
    title = f"{'Call' if kind == 'call' else 'Text'} from {resource.from_} to {resource.to}"
    parts = [
        f'<article class="{kind} {e(resource.status)}" id="{e(resource.sid)}">',
        f'<h2>{e(title)} <span class="status">{e(resource.status)}</span></h2>',
        f'<p class="meta">{e(resource.sid)} · {e(resource.direction)} · {_clock(resource.created)}</p>',
    ]
    if isinstance(resource, Message):
        parts.append(f'<blockquote class="body">{e(resource.body)}</blockquote>')
    else:
        parts += [f'<blockquote class="said">{e(item.text)}{_voice(item)}</blockquote>' for item in resource.said]
    if resource.error is not None:
        parts.append(f'<p class="error">Failed: {resource.error.code} {e(str(resource.error))}</p>')
    parts.append('<ol class="events">')
    parts += [
        f"<li><time>{_clock(event.at)}</time> <b>{e(event.name)}</b> {e(event.detail)}</li>"
        for event in resource.events
    ]
    parts.append("</ol></article>")
    return "\n".join(parts)


def _voice(said: Said) -> str:
    how = ", ".join(value for value in (said.voice, said.language) if value)
    return f" <small>({html.escape(how)})</small>" if how else ""


def _clock(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M:%S.%f")[:-3]
