"""Uploaded recordings, analysed in the background: the upload endpoints (app.analysis.routes),
the audio waiting in Redis (app.analysis.uploads), the upload job (app.analysis.jobs) and the
worker's emotion model (app.analysis.model), which the live drain job shares."""
