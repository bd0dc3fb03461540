"""Hypothesis strategies for hostile input shared by the webhook files: XML bodies with
random fields and values, truncated, prefixed, with a DOCTYPE or plain junk."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


NO_SURROGATES = st.characters(blacklist_categories=("Cs",))

FIELDS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event", "EventKey", "Encrypt"]


text_values = st.one_of(
    st.text(max_size=50),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300),
    st.sampled_from(
        [
            "text",
            "event",
            "image",
            "",
            "-1",
            "99999999999999999999",
            "]]>",
            "&amp;",
            "&lol;",
            "\u202e",
            "🎉" * 20,
            "subscribe",
            "CLICK",
            "<a>b</a>",
            "0" * 5000,
        ]
    ),
)


@st.composite
def xml_bodies(draw) -> bytes:
    parts = []
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=8)):
        value = draw(text_values)
        wrap = draw(st.booleans())
        value = value.replace("]]>", "]]]]><![CDATA[>") if wrap else re.sub(r"[<>&]", "", value)
        parts.append(f"<{name}>" + (f"<![CDATA[{value}]]>" if wrap else value) + f"</{name}>")
    body = "<xml>" + "".join(parts) + "</xml>"
    mutation = draw(st.sampled_from(["none", "truncate", "prefix", "doctype", "junk"]))
    if mutation == "truncate":
        body = body[: draw(st.integers(0, len(body)))]
    elif mutation == "prefix":
        body = draw(st.text(max_size=20)) + body
    elif mutation == "doctype":
        body = '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + body.replace(
            "</xml>", "<Content>&e;</Content></xml>"
        )
    elif mutation == "junk":
        return draw(st.binary(max_size=500))
    return body.encode("utf-8", "surrogatepass")
