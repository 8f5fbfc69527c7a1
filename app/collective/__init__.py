"""The collective mood across all users: running totals kept as readings are stored
(app.collective.totals), snapshots taken from them (app.collective.snapshot) every few seconds
by the cron job (app.collective.cron), the formulas (app.collective.formulas) and the public
/api/collective endpoints."""
