"""What writes in the feedback inbox: tickets, routing, SLA clocks, CSAT and reviews."""
