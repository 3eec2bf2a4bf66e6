"""Where users get the dossier: the project page, the evaluation page; the archive at decisions."""

from __future__ import annotations

from flask import Blueprint, Response, render_template
from flask_login import current_user, login_required

from crm import transaction
from crm.access import Action, load_project
from crm.audit.services import record
from crm.auth.models import User
from crm.core import LOCAL_TZ, content_disposition
from crm.projects.models import Project
from crm.projects.panels import Panel
from crm.reports.dossier import build_dossier, render_dossier
from crm.reports.renderer import RenderUnavailable

bp = Blueprint("reports", __name__)


def dossier_panel(project: Project, user: User) -> Panel:
    return Panel("reports/_panel.html")


@bp.app_errorhandler(RenderUnavailable)
def render_unavailable(error: RenderUnavailable):
    """Every helper busy, or the render ran out of time: nothing was saved (a decision that
    archives its dossier is not taken either), and trying again later works."""
    detail = "本次未生成文件，也未保存任何内容，请稍后重试。"
    response = render_template("error.html", code=503, message=error.message, detail=detail)
    return response, 503, {"Retry-After": "30"}


@bp.route("/projects/<int:project_id>/dossier.pdf")
@login_required
def project_dossier(project_id: int):
    project = load_project(current_user, project_id, Action.VIEW)
    dossier = build_dossier(project, current_user)
    pdf = render_dossier(dossier)
    record(current_user, "dossier_downloaded", project, summary=dossier.filename)
    transaction.keep()
    day = dossier.generated_at.astimezone(LOCAL_TZ).strftime("%Y%m%d")
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = content_disposition(
        dossier.filename, f"dossier-{project.id}-{day}.pdf"
    )
    response.headers["Cache-Control"] = "no-store"
    return response
