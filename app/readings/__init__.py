"""Emotion readings: the one writer of readings (app.readings.store), what it keeps from them for
the analytics (the collective's running totals in app.readings.rollups, each user's buckets in
app.readings.buckets, each session's series in app.readings.series), trends and distribution
(app.readings.stats), and the /api/readings endpoints."""
