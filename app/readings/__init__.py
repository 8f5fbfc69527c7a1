"""Emotion readings: the one writer of readings (app.readings.store), their trends and
distribution (app.readings.stats), and the /api/readings endpoints."""
