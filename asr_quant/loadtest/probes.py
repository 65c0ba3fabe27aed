"""Security probes against the running app: files that were never uploaded
must not be served, and uploads over the cap are refused."""
from __future__ import annotations

import json
import os
from pathlib import Path

import soundfile as sf

from ..examples import REPO
from .inputs import tone


def probe_security(url: str, fn_index: int, cap_bytes: int, workdir: Path) -> dict:
    """What an attacker would try first, against the running app: read files
    through the file route, make the app read a path it was not sent, and
    upload more than the cap. Each probe says what it expected and got."""
    import httpx

    results = {}
    secret = workdir / "not-uploaded.wav"
    sf.write(secret, tone(1.0, 16000), 16000)
    for name, target in {"file route /etc/passwd": "/etc/passwd",
                         "file route app.py": str(REPO / "app.py"),
                         "file route traversal": "../../../../../../etc/passwd",
                         "file route not-uploaded audio": str(secret)}.items():
        try:
            r = httpx.get(f"{url}gradio_api/file={target}", timeout=15)
            ok = r.status_code in (403, 404) and b"root:" not in r.content
            results[name] = {"expected": "403/404", "got": r.status_code, "pass": ok}
        except httpx.HTTPError as exc:
            results[name] = {"expected": "403/404", "got": f"{type(exc).__name__}", "pass": False}
    for name, path in {"request naming /etc/passwd": "/etc/passwd",
                       "request naming a file not uploaded": str(secret)}.items():
        results[name] = _probe_path(url, fn_index, path)
    big = workdir / "upload-over-cap.bin"
    with open(big, "wb") as f:
        f.truncate(cap_bytes + 1024 * 1024)
    try:
        with open(big, "rb") as f:
            r = httpx.post(f"{url}gradio_api/upload", files={"files": (big.name, f, "audio/wav")}, timeout=120)
        results["upload over the cap"] = {"expected": 413, "got": r.status_code, "pass": r.status_code == 413}
    except httpx.HTTPError as exc:
        results["upload over the cap"] = {"expected": 413, "got": type(exc).__name__, "pass": False}
    finally:
        big.unlink(missing_ok=True)
    return results


def _probe_path(url: str, fn_index: int, path: str) -> dict:
    """Join the queue with a hand-made payload naming a server path."""
    import httpx

    session = os.urandom(8).hex()
    expected = "refused (at the door, or success false), nothing transcribed"
    try:
        r = httpx.post(f"{url}gradio_api/queue/join", timeout=30, json={
            "data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, "en", "", None],
            "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None,
        })
        if r.status_code in (400, 422):  # the validator (before the queue) could not take the file
            return {"expected": expected, "got": f"refused at the door (HTTP {r.status_code})", "pass": True}
        r.raise_for_status()
        with httpx.stream("GET", f"{url}gradio_api/queue/data?session_hash={session}", timeout=300) as s:
            for line in s.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    refused = msg.get("success") is False
                    got = "refused" if refused else f"answered: {json.dumps(msg.get('output'))[:200]}"
                    return {"expected": expected, "got": got, "pass": refused}
    except (httpx.HTTPError, ValueError) as exc:
        return {"expected": expected, "got": f"{type(exc).__name__}: {exc}", "pass": False}
    return {"expected": expected, "got": "no answer", "pass": False}
