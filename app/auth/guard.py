"""Password guessing, limited per account without handing anyone a way to lock the owner out.

Every sign-in attempt counts against its client address (RATELIMIT_AUTH_IP, shared with
registration: app/auth/routes.py). A *failed* sign-in also counts against the account
(RATELIMIT_AUTH_ACCOUNT) and against the pair account + address. Once an account's failures
reach that limit, an address that has failed for it must wait for the window to pass; an
address that has not may still try, so the owner's correct password from their own address
gets in while someone else guesses. A wrong password from such an address counts too, and stops
that address in turn: each address gets one guess at an account under attack (docs/SECURITY.md
says why this beats a hard lock or growing delays). The API's and the admin's sign-in share the
counters.
"""
import time

import limits
from flask import current_app
from flask_limiter.util import get_remote_address

from app.extensions import limiter
from app.models import User


class SignInGuard:
    def __init__(self, email):
        self.account = User.normalize_email(email)
        self.address = get_remote_address()
        self.item = limits.parse(current_app.config["RATELIMIT_AUTH_ACCOUNT"])

    def _stats(self, *identifiers):
        return limiter.limiter.get_window_stats(self.item, "sign-in-failures", *identifiers)

    def retry_after(self):
        """Seconds this address must wait before trying this account again; 0: it may try now."""
        if not limiter.enabled:
            return 0
        account = self._stats(self.account)
        if account.remaining > 0:
            return 0
        if self._stats(self.account, self.address).remaining == self.item.amount:
            return 0  # the account is under attack, but not from here
        return max(1, int(account.reset_time - time.time()) + 1)

    def failed(self):
        if limiter.enabled:
            limiter.limiter.hit(self.item, "sign-in-failures", self.account)
            limiter.limiter.hit(self.item, "sign-in-failures", self.account, self.address)
