"""Environment responses: light, sound, visuals and smart-home settings that follow a user's
emotional state. app.environment.mapping is the pure mapping (docs/environment.md);
app.environment.store smooths the state and is the one writer of responses."""
