import mongoengine as me

from app.models.base import utcnow

ROLES = ("user", "admin")


class User(me.Document):
    # Stored lower-cased so the unique index makes email case-insensitive on any MongoDB.
    email = me.EmailField(required=True, unique=True, max_length=254)
    password_hash = me.StringField(required=True)
    display_name = me.StringField(required=True, max_length=80)
    role = me.StringField(choices=ROLES, default="user")
    created_at = me.DateTimeField(default=utcnow)
    last_login_at = me.DateTimeField()
    # Speaker adaptation (app/auth/voice.py is the only writer of the baseline): the statistics
    # of the user's earlier speech (ml/adapt.py), and whether the model may use them.
    adapt_voice = me.BooleanField(default=True)
    voice_baseline = me.ListField(me.FloatField())
    voice_baseline_updated_at = me.DateTimeField()
    # Raised by a password change, a password reset and "sign out everywhere": every token
    # issued with a lower version is refused (app/auth/tokens.py).
    token_version = me.IntField(min_value=0, default=0)

    meta = {"collection": "users", "indexes": ["role"]}

    @staticmethod
    def normalize_email(email):
        return email.strip().lower()

    @property
    def is_admin(self):
        return self.role == "admin"

    def clean(self):
        self.email = self.normalize_email(self.email)
