import marshmallow as ma
from flask import current_app

from app.api.schemas import StrictSchema, plain_text
from app.auth import voice

MAX_PASSWORD = 128


def _check_password_policy(value):
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    if len(value) < minimum:
        raise ma.ValidationError(f"Must be at least {minimum} characters.")
    if len(set(value)) < 4:
        raise ma.ValidationError("Must use at least 4 different characters.")


class RegisterSchema(StrictSchema):
    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=254))
    password = ma.fields.String(
        required=True, load_only=True,
        validate=[ma.validate.Length(max=MAX_PASSWORD), plain_text, _check_password_policy],
    )
    display_name = ma.fields.String(validate=[ma.validate.Length(min=1, max=80), plain_text])


class LoginSchema(StrictSchema):
    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=254))
    password = ma.fields.String(required=True, load_only=True,
                                validate=[ma.validate.Length(min=1, max=MAX_PASSWORD), plain_text])


class LogoutSchema(StrictSchema):
    refresh_token = ma.fields.String(validate=[ma.validate.Length(max=4096),
                                               ma.validate.Regexp(r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*$",
                                                                  error="Not a JWT.")])


class PasswordResetRequestSchema(StrictSchema):
    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=254))


class PasswordResetSchema(StrictSchema):
    token = ma.fields.String(required=True, validate=[
        ma.validate.Length(min=1, max=1024), ma.validate.Regexp(r"^[A-Za-z0-9_\-.]+$", error="Not a reset token.")])
    new_password = ma.fields.String(
        required=True, load_only=True,
        validate=[ma.validate.Length(max=MAX_PASSWORD), plain_text, _check_password_policy],
    )


class MessageSchema(ma.Schema):
    message = ma.fields.String()


class JsonBoolean(ma.fields.Boolean):
    """true or false only: 1, "yes" and "true" are refused (a typo must not flip a setting)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class ProfileUpdateSchema(StrictSchema):
    display_name = ma.fields.String(validate=[ma.validate.Length(min=1, max=80), plain_text])
    current_password = ma.fields.String(load_only=True, validate=[ma.validate.Length(max=MAX_PASSWORD), plain_text])
    new_password = ma.fields.String(
        load_only=True, validate=[ma.validate.Length(max=MAX_PASSWORD), plain_text, _check_password_policy]
    )

    adapt_voice = JsonBoolean(
        metadata={"description": "Adapt the model to your voice (a voice baseline learned from your speech)"})

    @ma.validates_schema
    def _password_change_needs_current(self, data, **_kwargs):
        if "new_password" in data and not data.get("current_password"):
            raise ma.ValidationError("Required to change the password.", "current_password")
        if not data:
            raise ma.ValidationError("Give display_name, new_password or adapt_voice.", "_schema")


class UserSchema(ma.Schema):
    id = ma.fields.String()
    email = ma.fields.String()
    display_name = ma.fields.String()
    role = ma.fields.String()
    created_at = ma.fields.AwareDateTime()
    last_login_at = ma.fields.AwareDateTime(allow_none=True)


class VoiceBaselineSchema(ma.Schema):
    exists = ma.fields.Boolean(metadata={"description": "Whether a voice baseline has been learned"})
    speech_seconds = ma.fields.Float(metadata={"description": "Seconds of your speech it summarises"})
    updated_at = ma.fields.AwareDateTime(allow_none=True)


class ProfileSchema(UserSchema):
    adapt_voice = ma.fields.Boolean()
    voice_baseline = ma.fields.Nested(VoiceBaselineSchema)
    # Only after a password change, which revokes every earlier token: the caller's new pair.
    access_token = ma.fields.String(metadata={"description": "After a password change only: a new access token"})
    refresh_token = ma.fields.String(metadata={"description": "After a password change only: a new refresh token"})

    def get_attribute(self, obj, attr, default):
        # The document's field holds the statistics themselves; the profile shows their summary.
        if attr == "voice_baseline":
            return voice.summary(obj)
        return super().get_attribute(obj, attr, default)


class TokensSchema(ma.Schema):
    access_token = ma.fields.String()
    refresh_token = ma.fields.String()
    token_type = ma.fields.String()
    expires_in = ma.fields.Integer(metadata={"description": "Access token lifetime in seconds"})
    user = ma.fields.Nested(UserSchema)


class AccessTokenSchema(ma.Schema):
    access_token = ma.fields.String()
    token_type = ma.fields.String()
    expires_in = ma.fields.Integer()
