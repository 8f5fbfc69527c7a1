"""The collective mood across all users: snapshots (app.collective.snapshot) taken every few
seconds by the cron job (app.collective.cron) from the rollups of recent readings
(app/readings/rollups.py), their formulas (app.collective.formulas), and the public
/api/collective endpoints."""
