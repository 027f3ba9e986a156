"""A small stand-in for the Hugging Face Hub's HTTP API, so the upload path can be tested offline.

It implements only what `huggingface_hub`'s `create_repo`, `create_branch` and `upload_folder` call, and
remembers what it was sent (repos, commits with their files' bytes, every request) for the test to check:

    GET  /api/agent-harnesses                        a registry the client reads for its user agent (empty)
    POST /api/repos/create                           create a repo (409 if it exists)
    POST /api/validate-yaml                          check a README.md's metadata (always fine here)
    POST /api/models/{repo_id}/preupload/{revision}  say how each file travels: "regular" = inline in the commit
    POST /api/models/{repo_id}/branch/{branch}       create a branch (409 if it exists)
    POST /api/models/{repo_id}/commit/{revision}     an NDJSON commit: a header line, then one line per file

Answering "regular" to the preupload request is what keeps this small: the client then sends every file's
bytes base64-encoded inside the commit body instead of going through LFS / Xet storage. Any other request is
answered 404 and recorded, so a test sees at once what a new client version asks for.
"""

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class Commit:
    repo_id: str
    revision: str
    summary: str
    files: dict[str, bytes]  # path in repo -> content
    oid: str


@dataclass
class FakeHub:
    """Start with `with FakeHub(token="hf_x") as hub:`; point the client at `hub.endpoint` (HF_ENDPOINT)."""

    token: str
    repos: dict[str, dict] = field(default_factory=dict)  # repo_id -> {"private": bool, "branches": set}
    commits: list[Commit] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) in arrival order
    unhandled: list[tuple[str, str]] = field(default_factory=list)

    def __enter__(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hub._handle(self, "GET")

            def do_POST(self):
                hub._handle(self, "POST")

            def do_PUT(self):
                hub._handle(self, "PUT")

            def log_message(self, *args):  # keep the test output clean
                pass

        # Port 0: the OS picks a free port, so parallel test runs never collide.
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    # -- request handling --------------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str):
        path = unquote(urlsplit(request.path).path)
        self.requests.append((method, path))
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        if method == "GET" and path == "/api/agent-harnesses":
            # Best-effort telemetry the client fetches without a token (its user agent names the calling agent).
            return self._reply(request, 200, {"standardEnvVars": [], "harnesses": {}})
        # Like the Hub, refuse a write without the right token (the client sends "Authorization: Bearer ...").
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._reply(request, 401, {"error": "Invalid credentials in Authorization header"})

        if method == "POST" and path == "/api/repos/create":
            return self._create_repo(request, json.loads(body))
        if method == "POST" and path == "/api/validate-yaml":
            return self._reply(request, 200, {"errors": [], "warnings": []})
        parts = path.split("/")  # ["", "api", "models", owner, name, action, revision...]
        if method == "POST" and len(parts) >= 7 and parts[:3] == ["", "api", "models"]:
            repo_id, action, revision = f"{parts[3]}/{parts[4]}", parts[5], "/".join(parts[6:])
            if repo_id not in self.repos:
                return self._reply(request, 404, {"error": "Repository not found"})
            if action == "preupload":
                files = json.loads(body)["files"]
                modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
                return self._reply(request, 200, {"files": modes})
            if action == "branch":
                return self._create_branch(request, repo_id, revision)
            if action == "commit":
                return self._commit(request, repo_id, revision, body)
        self.unhandled.append((method, path))
        return self._reply(request, 404, {"error": f"fake hub: no handler for {method} {path}"})

    def _create_repo(self, request, payload: dict):
        repo_id = f"{payload['organization']}/{payload['name']}"
        url = {"url": f"{self.endpoint}/{repo_id}"}
        if repo_id in self.repos:
            return self._reply(request, 409, {"error": "You already created this model repo", **url})
        # A new Hub repo has a main branch with an initial commit; visibility is "private" or "public".
        self.repos[repo_id] = {"private": payload.get("visibility") == "private", "branches": {"main"}}
        return self._reply(request, 200, url)

    def _create_branch(self, request, repo_id: str, branch: str):
        if branch in self.repos[repo_id]["branches"]:
            return self._reply(request, 409, {"error": "Reference already exists"})
        self.repos[repo_id]["branches"].add(branch)
        return self._reply(request, 200, {})

    def _commit(self, request, repo_id: str, revision: str, body: bytes):
        if revision not in self.repos[repo_id]["branches"]:
            return self._reply(request, 404, {"error": f"Invalid rev id: {revision}"})
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        files = {}
        for line in lines:
            if line["key"] != "file":  # "lfsFile" would mean the client uploaded elsewhere first: not supported
                if line["key"] != "header":
                    return self._reply(request, 400, {"error": f"fake hub: unsupported commit line {line['key']}"})
                continue
            files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
        oid = hashlib.sha1(body).hexdigest()
        self.commits.append(Commit(repo_id, revision, header["summary"], files, oid))
        return self._reply(request, 200, {"commitUrl": f"{self.endpoint}/{repo_id}/commit/{oid}", "commitOid": oid})

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, payload: dict):
        data = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
