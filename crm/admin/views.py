"""Admin pages: users and catalogues. (stub, filled next)"""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/users")
def users():
    return ""
