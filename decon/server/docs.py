"""/docs (Swagger UI) and /redoc (ReDoc) served without any CDN.

FastAPI's default pages load their JavaScript, CSS and favicon from public CDNs, so on a cluster
host without internet they stay blank. The same assets ship inside the ``fastapi-offline`` wheel;
they are served here from ``/docs-assets/`` and the pages are FastAPI's own, pointed at them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, Response

ASSETS_URL = "/docs-assets"
# The pages may load nothing from elsewhere (ReDoc's footer links a logo on its vendor's CDN).
LOCAL_ONLY = {"Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline' blob:; "
              "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
              "worker-src 'self' blob:; connect-src 'self'"}
# file name -> media type; nothing else under ASSETS_URL is served
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
# ReDoc's footer shows its vendor's logo from a CDN: served with that image taken out.
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
# A transparent 1x1 GIF (no request, nothing shown).
BLANK_IMAGE = b"data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw=="


def assets_dir() -> Path:
    """The folder of the packaged Swagger UI / ReDoc files."""
    return Path(str(resources.files("fastapi_offline") / "static"))


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers.update(LOCAL_ONLY)
    return page


def add_offline_docs(app: FastAPI) -> None:
    """Add /docs, /redoc and their assets to an app created with docs_url=None, redoc_url=None."""
    folder = assets_dir()
    missing = [name for name in ASSETS if not (folder / name).is_file()]
    if missing:
        raise RuntimeError(f"API docs assets missing from {folder}: {', '.join(missing)}")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    redoc_js = (folder / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO, BLANK_IMAGE)
    cache = {"Cache-Control": "public, max-age=86400"}

    @app.get(f"{ASSETS_URL}/{{name}}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(status_code=404, detail="Not Found")
        if name == "redoc.standalone.js":
            return Response(redoc_js, media_type=ASSETS[name], headers=cache)
        return FileResponse(folder / name, media_type=ASSETS[name], headers=cache)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _local_only(get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} - API docs", oauth2_redirect_url=redirect_url,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js", swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        ))

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _local_only(get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc",
                                          redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                                          redoc_favicon_url=f"{ASSETS_URL}/favicon.png", with_google_fonts=False))
