"""A new user's first hour, in headless Chromium: the snippet the dashboard shows is copied with
its Copy button and run as is, with our SDK and with the official 0.3.26 one, and the sessions
appear; reloading the new-key page mints nothing; the API docs and the error pages ask nothing of
any other host.

The live server listens on a random port, never 8000: a snippet that hard-coded the default
address would send nowhere.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from projects.models import ApiKey
from sessions.models import Session
from tests.official_sdk import run_official
from tests.test_browser_dashboard import browser_page

__all__ = ["browser_page"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parent.parent / ".cache" / "screenshots"


def sign_in(page, base, username, password):
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_the_snippet_runs_as_pasted_and_the_sessions_appear(
    browser_page, live_server, alice, project, tmp_path
):
    page, errors, outside = browser_page
    base = live_server.url
    assert not base.endswith(":8000")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    sign_in(page, base, "alice", "alice-password-1")
    page.wait_for_url(f"{base}/p/{project.slug}/")

    # The empty project's page: this server's address, and only SDKs it speaks.
    code = page.inner_text("#sdk-code")
    assert f'endpoint="{base}"' in code
    hint = page.inner_text(".snippet")
    assert "agentops==0.3.26" in hint
    assert page.inner_text("#sdk-install").startswith("pip install ")
    assert page.inner_text("#sdk-install").rstrip('"').endswith("/sdk")
    assert f"AGENTOPS_API_ENDPOINT={base}" in hint
    shot(page, "onboarding-empty-project")

    # Create a key: the page after the POST shows it once, inside a snippet ready to paste.
    page.click("nav.mainnav >> text=Settings")
    page.fill("input[name=label]", "first agent")
    page.click("button:has-text('Create key')")
    page.wait_for_url(f"{base}/p/{project.slug}/settings/#new-key")
    raw = page.input_value("#new-key-value")
    page.click("#new-key button[data-copy='#sdk-code']")
    page.wait_for_selector("#new-key button[data-copy='#sdk-code']:has-text('Copied')")
    pasted = page.evaluate("navigator.clipboard.readText()")
    assert f'api_key="{raw}"' in pasted and f'endpoint="{base}"' in pasted
    shot(page, "onboarding-new-key")

    # Paste it into a file and run it: our SDK (installed from sdk/ in this venv) ...
    script = tmp_path / "agent.py"
    script.write_text(pasted)
    ours = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert ours.returncode == 0, ours.stdout + ours.stderr
    # ... and the official agentops==0.3.26, unchanged.
    run_official(pasted, env={"PATH": "/usr/bin:/bin"})

    sessions = Session.objects.filter(project=project)
    assert sessions.count() == 2
    assert set(sessions.values_list("end_state", flat=True)) == {"Success"}
    assert all("my-first-agent" in s.tags.values_list("name", flat=True) for s in sessions)
    page.goto(f"{base}/p/{project.slug}/")
    assert page.locator("[data-stat=sessions]").inner_text() == "2"

    # Reloading the key page shows no key and mints none.
    page.goto(f"{base}/p/{project.slug}/settings/")
    page.reload()
    assert page.locator("#new-key-value").count() == 0
    assert ApiKey.objects.filter(project=project).count() == 1
    assert errors == []
    assert outside == []


def test_the_api_docs_load_everything_from_this_server(browser_page, live_server):
    page, errors, outside = browser_page
    page.goto(f"{live_server.url}/v2/docs")
    page.wait_for_selector("text=Self-hosted AgentOps API")
    page.wait_for_selector("text=create_session")
    page.wait_for_load_state("networkidle")
    shot(page, "api-docs")
    assert outside == []
    # The one console message allowed: our policy refusing Redoc's hard-coded CDN logo.
    refused = [e for e in errors if "Content Security Policy" in e and "cdn.redoc.ly" in e]
    assert errors == refused and len(refused) <= 1, errors
    assert page.locator("img[src^='https://']").count() == 0


def test_error_pages_are_the_dashboards_own(browser_page, live_server, bob, project):
    page, _, outside = browser_page
    base = live_server.url
    sign_in(page, base, "bob", "bob-password-1")
    response = page.goto(f"{base}/p/{project.slug}/settings/")
    assert response.status == 403
    assert "Only the project's owners manage its settings." in page.inner_text("main")
    assert page.locator("header.topbar").count() == 1  # the dashboard's own layout
    shot(page, "error-403")
    response = page.goto(f"{base}/no/such/page")
    assert response.status == 404
    assert "Page not found" in page.inner_text("main")
    assert "URLconf" not in page.content()
    shot(page, "error-404")
    assert outside == []
