"""Exports of a user's readings as CSV or JSON, streamed in constant memory: one module of
formats (app.export.formats) for GET /api/export and `flask export`, so both write the same bytes."""
