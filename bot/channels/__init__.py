"""Channels: parse a platform's request into an Inbound, render a reply for it.

Each channel does exactly parse → Inbound and reply text → body; nothing else.
"""
