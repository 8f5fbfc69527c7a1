"""Emotion sessions: their life cycle (app.sessions.store), their analytics and insights
(app.sessions.analytics, pure; app.sessions.summary, computed from the session's series and
cached), and the /api/sessions endpoints. A live stream's session is started by the Socket.IO
handlers (app.live)."""
