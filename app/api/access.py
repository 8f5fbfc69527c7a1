"""Ownership rules shared by every blueprint: users see their own data, admins anyone's."""
import functools

from bson import ObjectId
from bson.errors import InvalidId
from flask import g
from flask_jwt_extended import current_user, jwt_required

from app.api.errors import ApiError, invalid_input
from app.models import User
from app.models.base import ref_id


def object_id(value, field="id"):
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        raise invalid_input("query", field, "Not a valid id.")


class Caller:
    """`current_user` in an endpoint that needs to know only who is calling
    (`ApiBlueprint.authenticated(..., caller=True)`): the token's subject, without loading the user
    from MongoDB first, the largest fixed cost of an analytics request (docs/BENCHMARKS.md). Whether
    the caller is an admin is read from the stored user when first asked: the token's role claim
    may be older than a change made in the admin."""

    def __init__(self, user_id):
        self.id = ObjectId(user_id)

    @functools.cached_property
    def is_admin(self):
        user = User.objects(id=self.id).only("role").first()
        if user is None:
            raise ApiError(401, "The account for this token no longer exists", code="user_not_found")
        return user.is_admin


def caller_only(view):
    """Ask the token's user lookup (app/auth/tokens.py) for a Caller instead of the user."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        g.caller_only = True
        return view(*args, **kwargs)

    return wrapper


def get_owned(model, doc_id, field="id", admin_may=True):
    """The document if the caller owns it (or is an admin); 404 otherwise, so ids leak nothing.

    admin_may=False for writes that file new data under the document (a reading into a session):
    an admin reads and manages anyone's data but never adds to another user's."""
    # Straight from the collection: a queryset's first() cost the web process more than the query.
    son = model._get_collection().find_one({"_id": object_id(doc_id, field)})
    doc = None if son is None else model._from_son(son)
    # ref_id, not doc.owner.id: that would load the owner, one more MongoDB query per request.
    if doc is None or (ref_id(doc, "owner") != str(current_user.id) and not (admin_may and current_user.is_admin)):
        raise ApiError(404, f"No such {model.__name__}", details={"field": field})
    return doc


def owner_scope(user_id=None):
    """The owner a list is about: the caller, or for an admin any user given as user_id."""
    if user_id is None or str(user_id) == str(current_user.id):
        return current_user
    if not current_user.is_admin:
        raise ApiError(403, "Only an admin may read another user's data", details={"field": "user_id"})
    user = User.objects(id=object_id(user_id, "user_id")).first()
    if user is None:
        raise ApiError(404, "No such user", details={"field": "user_id"})
    return user


def admin_required(view):
    """A signed-in admin, else 403 (401 without a valid token)."""

    @functools.wraps(view)
    @jwt_required()
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            raise ApiError(403, "Admins only")
        return view(*args, **kwargs)

    return wrapper
