"""Customers, orders, refunds, the customer timeline, consent, imports, the ingest API and
shop webhooks, RFM segments, personas, predictions, retention metrics and customer
sign-in for the rewards page."""
