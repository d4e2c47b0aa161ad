"""Everything that writes the loyalty program: the ledger, earning, rewards, tiers,
memberships and referrals."""
