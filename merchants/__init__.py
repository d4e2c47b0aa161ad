"""The tenant: merchants, staff accounts and their roles, the audit log, scheduled-job
claims, staff sign-in and the dashboard shell."""
