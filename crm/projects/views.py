from flask import Blueprint

bp = Blueprint("projects", __name__, url_prefix="/projects")


@bp.route("/")
def index():
    return ""


@bp.route("/<int:project_id>")
def detail(project_id):
    return ""
