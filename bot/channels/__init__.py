"""Channels: parse a platform's request into an Inbound, render a reply for it.

Both webhooks speak one protocol, ``base.Channel`` (verify, decrypt, parse, seal);
``wechat`` and ``wecom`` declare only what differs. A channel does exactly
parse → Inbound and reply text → body; nothing else.
"""
