"""Scheduled pushes (monthly quiz, 廉洁过节, 政治生日, meetings) and the festival calendar.

Jobs never send anything themselves: they create deliveries in the outbox.
"""
