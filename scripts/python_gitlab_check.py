#!/usr/bin/env python3
"""Check the glmirror GitLab simulator with an UNMODIFIED python-gitlab: reads, then
pull-mirror writes (create() is a PUT, save() a PUT, start() a POST).

Usage: python_gitlab_check.py BASE_URL [TOKEN]
The token (a simulator admin token) may instead come from env GLMIRROR_SIM_TOKEN.
Expects the built-in demo fixture (fixtures/sim/demo.json). Exits non-zero on any mismatch.

Install the client with: python3 -m pip install python-gitlab
"""

import os
import sys

import gitlab

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"MISMATCH: {what}", file=sys.stderr)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    base = sys.argv[1].rstrip("/")
    token = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("GLMIRROR_SIM_TOKEN", "")
    gl = gitlab.Gitlab(base, private_token=token, retry_transient_errors=False)
    gl.auth()
    check(gl.user.username == "root", f"auth user is {gl.user.username!r}")
    check(getattr(gl.user, "is_admin", False) is True, "root has is_admin: true")
    version, _revision = gl.version()
    check(version.endswith("-ee"), f"version {version!r}")

    # Keyset iteration over every project (python-gitlab follows the Link header).
    projects = list(
        gl.projects.list(iterator=True, pagination="keyset", order_by="id", sort="asc", per_page=7)
    )
    ids = [p.id for p in projects]
    check(ids == sorted(set(ids)), "keyset ids strictly increasing")
    offset = gl.projects.list(iterator=True, per_page=10)
    check(offset.total == len(ids), f"keyset saw {len(ids)} projects, X-Total says {offset.total}")
    mirrored = [p for p in projects if getattr(p, "mirror", False)]
    check(len(mirrored) >= 20, f"only {len(mirrored)} pull mirrors listed")
    check(all("@" not in (p.import_url or "") for p in projects if hasattr(p, "import_url") and "://" in (p.import_url or "")),
          "import_url carries no credentials")

    # Pull mirror details through the library's manager and through the raw REST path.
    project = gl.projects.get("platform/billing")
    pull = project.pull_mirror.get()
    check(pull.url == "https://*****:*****@github.com/acme/billing.git", f"masked url {pull.url!r}")
    check(pull.update_status == "failed", f"update_status {pull.update_status!r}")
    check(pull.enabled is True, "enabled is true")
    raw = gl.http_get(f"/projects/{project.id}/mirror/pull")
    check(raw["last_error"] == "4:Deadline Exceeded.", f"last_error {raw['last_error']!r}")
    try:
        gl.projects.get(11, lazy=True).pull_mirror.get()
        check(False, "a non-mirrored project must answer 400")
    except gitlab.exceptions.GitlabGetError as e:
        check(e.response_code == 400, f"not mirrored gives {e.response_code}")

    # Push mirrors.
    mirrors = gl.projects.get(33, lazy=True).remote_mirrors.list(get_all=True)
    check(len(mirrors) == 1, f"{len(mirrors)} push mirrors on project 33")
    if mirrors:
        check(mirrors[0].url == "https://*****:*****@gitlab.com/acme-backup/api-gateway.git",
              f"push url {mirrors[0].url!r}")
        check(mirrors[0].only_protected_branches is True, "only_protected_branches")
    ssh = gl.projects.get(27, lazy=True).remote_mirrors.list(get_all=True)
    check(ssh and ssh[0].url == "ssh://git@gitlab.com/acme-backup/k8s-manifests.git", "ssh push mirror keeps git@")

    # Writes, after every read above: the library's create() is a PUT, start() a POST.
    mobile = gl.projects.get(9, lazy=True)
    created = mobile.pull_mirror.create(
        {"url": "https://github.com/acme/mobile-app.git", "enabled": True,
         "auth_user": "svc-mirror", "auth_password": "pa$$w/o/rd"}
    )
    check(created.url == "https://*****:*****@github.com/acme/mobile-app.git",
          f"created pull mirror url {created.url!r}")
    check(created.enabled is True, "created pull mirror is enabled")
    saved = mobile.pull_mirror.get()
    saved.only_mirror_protected_branches = True
    saved.save()
    again = mobile.pull_mirror.get()
    check(again.only_mirror_protected_branches is True, "save() keeps the changed flag")
    check(again.url == created.url, "save() keeps the stored credentials")
    mobile.pull_mirror.start()
    stopped = mobile.pull_mirror.create({"enabled": False})
    check(stopped.enabled is False and "@" not in stopped.url,
          f"disabling drops the credentials: {stopped.url!r}")

    if failures:
        print(f"{len(failures)} mismatch(es)", file=sys.stderr)
        return 1
    print(f"python-gitlab {gitlab.__version__}: {len(ids)} projects, {len(mirrored)} pull mirrors: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
