"""Promotions and codes, win-back campaigns with holdout and attribution, message
templates, email delivery, unsubscribe, open/click tracking and triggered flows."""
