"""`geolocate serve`: load the model once, then answer on host:port until Ctrl-C."""

from __future__ import annotations

from geolocate.console import console
from geolocate.errors import UserError

MISSING_EXTRA = "geolocate serve needs FastAPI and uvicorn: pip install 'geolocate[serve]'"


def run_serve(cfg, paths, ref: str, host: str, port: int) -> None:
    """Serve the page and the JSON API for the model `ref` (a run, a release, `best` or a checkpoint)."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn
    except ImportError:
        raise UserError(MISSING_EXTRA) from None
    from geolocate.serve.app import create_app, is_local
    from geolocate.serve.model import ServedModel

    if not is_local(host):
        console.print(f"[yellow]warning:[/] binding {host}: anyone who can reach this machine on port {port} "
                      "can send photos to the model; use --host 127.0.0.1 to keep it local", soft_wrap=True)
    model = ServedModel.load(ref, paths)
    app = create_app(model, cfg.serve)
    console.print(f"[green]✓[/] model {model.card.get('run_id') or ref} ({model.card.get('engine')}) loaded; "
                  f"open http://{_url_host(host)}:{port}/ (Ctrl-C stops)", soft_wrap=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port") from None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
