"""Accounts and tokens: registration, sign-in, JWT access and refresh tokens (revocation list in
Redis), the signed-in account, and the account-wide operations (app.auth.accounts) the admin
and the CLI share."""
