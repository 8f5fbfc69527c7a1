"""Emotion readings: the one writer of readings (app.readings.store), the rollups of recent
readings it keeps (app.readings.rollups), trends and distribution (app.readings.stats), and the
/api/readings endpoints."""
