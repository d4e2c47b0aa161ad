"""Loyalty programs: settings, earning rules, the points ledger, rewards and redemptions,
tiers and their history, paid memberships, referrals and the rewards page."""
