"""The web dashboard (app.dashboard.routes): Live, Upload, History and Collective pages."""
