"""Emotion sessions: their life cycle (app.sessions.store), their analytics and insights
(app.sessions.analytics, pure), and the /api/sessions endpoints. A live stream's session is
started by the Socket.IO handlers (app.live)."""
