"""The feedback inbox: tickets and their messages, departments, routing rules, canned
replies, SLA policies and CSAT."""
