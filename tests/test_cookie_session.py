from app.cookie_session import CookieSessionInterface


def test_the_signing_serializer_is_built_once_per_key_set(app):
    # (sessions in use, end to end: the admin sign-in in test_admin.py)
    interface = app.session_interface
    assert isinstance(interface, CookieSessionInterface)
    first = interface.get_signing_serializer(app)
    assert interface.get_signing_serializer(app) is first
    old_key = app.secret_key
    app.secret_key = "another secret key of at least thirty-two characters"
    app.config["SECRET_KEY_FALLBACKS"] = [old_key]
    try:
        rotated = interface.get_signing_serializer(app)
        assert rotated is not first
        # a cookie signed with the old key is still read, through the fallback
        assert rotated.loads(first.dumps({"user": "ada"})) == {"user": "ada"}
    finally:
        app.secret_key = old_key
        app.config["SECRET_KEY_FALLBACKS"] = []

