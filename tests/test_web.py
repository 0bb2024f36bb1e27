"""The web admin in a real headless Chromium, against a real server on loopback.

One server (SQLite) and one Chromium serve the whole module; each test gets a
fresh browser context (no cookies), logs in with a code from the real CLI and
works on its own app. The page's API calls are the CLI's, so PostgreSQL is
covered by the API tests. Screenshots of each screen go to tests/artifacts/.
"""

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import REPO, Device, start_server

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - the skip below says why
    sync_playwright = None

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(
        sync_playwright is None,
        reason="web admin tests need Playwright for Python: pip install -e '.[dev]'",
    ),
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="web admin tests need Chromium: apt-get install chromium",
    ),
]

ARTIFACTS = REPO / "tests" / "artifacts" / "web"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# A name that is not localhost but still reaches the loopback server: the page
# there is not a secure context, so the browser hides WebCrypto.
PLAIN_HTTP_HOST = "dotmage.test"
SAMPLE = (
    "# database\n"
    "DATABASE_URL=postgres://app:s3cret@db:5432/app\n"
    'GREETING="hello world" # shown on the home page\n'
    "export PORT=8000\n"
    "\n"
    "EMPTY=\n"
)
TIMEOUT_MS = 15_000


# -- fixtures ----------------------------------------------------------------------


class Web:
    """The module's server and its first device, with helpers for tests."""

    def __init__(self, server, laptop: Device, base: Path):
        self.server, self.laptop, self.base = server, laptop, base

    def new_app(self, name: str, text: str = SAMPLE, env: str = "dev") -> None:
        path = self.laptop.write(name.replace("/", "_") + ".env", text)
        self.laptop.run("init", name, "--file", path.name, "--env", env, check=0)

    def device(self, name: str) -> Device:
        device = Device(
            self.base / f"{name}-home", self.base / f"{name}-work", self.server
        )
        device.environment["DOTMAGE_DEVICE_NAME"] = name
        device.auth()
        return device

    def login_code(self) -> str:
        printed = self.laptop.run("token", check=0).stdout
        return re.search(r"dmage_etok_\S+", printed).group(0)

    def pull(self, app: str, env: str = "dev") -> bytes:
        pulled = self.laptop.run("pull", app, "--env", env, "--stdout", check=0)
        return pulled.stdout_bytes


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    base = tmp_path_factory.mktemp("web")
    server = start_server(base, f"sqlite:///{base / 'server.db'}")
    laptop = Device(base / "laptop-home", base / "laptop-work", server)
    laptop.environment["DOTMAGE_DEVICE_NAME"] = "laptop"
    laptop.auth()
    yield Web(server, laptop, base)
    server.stop()


@pytest.fixture(scope="module")
def playwright():
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright):
    launched = launch(playwright)
    yield launched
    launched.close()


def launch(playwright, *flags):
    """Debian's Chromium with a fresh temporary profile; never a downloaded one."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_FLAGS, *flags], headless=True
    )


class Watched:
    """A page, with every console error and every request it made."""

    def __init__(self, page, origin: str):
        self.page, self.origin = page, origin
        self.errors, self.foreign = [], []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", self._request)
        page.set_default_timeout(TIMEOUT_MS)

    def _console(self, message) -> None:
        # A refused API call logs a network error in Chromium: that is the
        # page doing its job (e.g. a 409 on a stale save), not a fault.
        if message.type == "error" and "status of" not in message.text:
            self.errors.append(message.text)

    def _request(self, request) -> None:
        if not request.url.startswith(self.origin + "/"):
            self.foreign.append(request.url)


def _open(browser, origin: str, **options) -> Watched:
    context = browser.new_context(
        permissions=["clipboard-read", "clipboard-write"], **options
    )
    page = context.new_page()
    watched = Watched(page, origin)
    page.goto(origin + "/")
    return watched


@pytest.fixture
def page(browser, web):
    watched = _open(browser, web.server.url)
    yield watched.page
    watched.page.context.close()
    assert watched.foreign == [], "the page made requests to another origin"
    assert watched.errors == [], "the page logged errors"


def login(page, web: Web) -> None:
    page.fill("#login-code", web.login_code())
    page.press("#login-code", "Enter")
    expect(page.locator("h1")).to_have_text("Apps")


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def open_env(page, app: str, env: str = "dev", tab: str = "") -> None:
    hash_ = f"#/env/{app.replace('/', '%2F')}/{env}" + (f"/{tab}" if tab else "")
    page.evaluate("hash => { location.hash = hash; }", hash_)
    expect(page.locator("h1")).to_have_text(f"{app} · {env}")


def secret_row(page, key: str):
    return page.locator(
        "table.secrets tr", has=page.locator(f"th code:text-is('{key}')")
    )


# -- login, reading, and the parser ------------------------------------------------


def test_login_shows_apps_by_folder_and_reads_a_value_the_cli_pushed(page, web):
    web.new_app("work/api")
    web.new_app("solo")
    screenshot(page, "01-login")
    login(page, web)

    folder = page.locator("section.folder", has=page.locator("h2", has_text="work/"))
    expect(folder.locator("tr", has_text="api")).to_contain_text("1")
    screenshot(page, "02-apps")

    folder.get_by_role("link", name="api").click()
    expect(page.locator("h1")).to_have_text("work/api")
    page.get_by_role("link", name="dev", exact=True).click()
    database = secret_row(page, "DATABASE_URL")
    expect(database.locator("code.value")).to_have_text("••••••••")
    expect(page.locator("body")).not_to_contain_text("s3cret")

    database.get_by_role("button", name="Reveal DATABASE_URL").click()
    expect(database.locator("code.value")).to_have_text(
        "postgres://app:s3cret@db:5432/app"
    )
    expect(secret_row(page, "GREETING").locator("code.value")).to_have_text("••••••••")
    screenshot(page, "03-env")


def test_reveal_all_copy_and_the_raw_text(page, web):
    web.new_app("reveal")
    login(page, web)
    open_env(page, "reveal")

    page.get_by_role("button", name="Reveal all").click()
    expect(secret_row(page, "GREETING").locator("code.value")).to_have_text(
        "hello world"
    )
    expect(secret_row(page, "EMPTY").locator("code.value")).to_have_text("(empty)")

    secret_row(page, "PORT").get_by_role("button", name="Copy PORT").click()
    assert page.evaluate("navigator.clipboard.readText()") == "8000"

    raw = page.locator("details.raw pre")
    expect(raw).to_be_empty()
    page.locator("details.raw summary").click()
    expect(raw).to_contain_text("# database")
    assert raw.text_content() == SAMPLE


def test_the_page_parser_passes_the_shared_vectors_in_the_browser(page, web):
    vectors = json.loads((REPO / "tests" / "vectors" / "dotenv.json").read_text())
    results = page.evaluate(
        """async (vectors) => {
            const dotenv = await import("/js/dotenv.js");
            const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            return vectors.map((vector) => {
              try {
                const text = "input_b64" in vector
                  ? dotenv.decode(bytes(vector.input_b64))
                  : vector.input;
                return { values: [...dotenv.toDict(dotenv.parse(text))] };
              } catch (error) {
                return { line: error.line, name: error.name };
              }
            });
        }""",
        vectors,
    )
    assert len(results) == len(vectors) >= 50
    for vector, result in zip(vectors, results, strict=True):
        if "error_line" in vector:
            assert result == {"line": vector["error_line"], "name": "DotenvError"}, (
                vector["name"]
            )
        else:
            assert result == {"values": vector["expected"]}, vector["name"]


def test_the_fallback_hkdf_matches_webcrypto_python_and_rfc_5869(page, web):
    from dotmage import crypto

    secret = bytes(range(32))
    derived = page.evaluate(
        """async (secret) => {
            const seal = await import("/js/seal.js");
            const { hkdfSha256 } = await import("/js/sha256.js");
            const bytes = Uint8Array.from(secret);
            const info = new TextEncoder().encode("dotmage/enroll-auth");
            const rfc = hkdfSha256(
              Uint8Array.from({ length: 22 }, () => 0x0b),
              Uint8Array.from({ length: 10 }, (_, i) => 0xf0 + i),
              42,
              Uint8Array.from({ length: 13 }, (_, i) => i),
            );
            return {
              webcrypto: seal.b64encode(await seal.hkdf(bytes, "dotmage/enroll-auth")),
              fallback: seal.b64encode(hkdfSha256(bytes, info, 32)),
              rfc: Array.from(rfc, (b) => b.toString(16).padStart(2, "0")).join(""),
            };
        }""",
        list(secret),
    )
    expected = crypto.b64encode(crypto.hkdf(secret, "dotmage/enroll-auth"))
    assert derived["webcrypto"] == derived["fallback"] == expected
    assert derived["rfc"] == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c"
        "5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_sealed_values_cross_between_python_and_the_browser(page, web):
    from dotmage import crypto

    key = crypto.new_key()
    from_python = crypto.seal(key, b"A=1\n", crypto.aad_revision("work/api", "dev"))
    result = page.evaluate(
        """async ([raw, sealed]) => {
            const seal = await import("/js/seal.js");
            const key = await seal.importKey(seal.b64decode(raw));
            const aad = seal.aad.revision("work/api", "dev");
            const opened = await seal.unseal(key, sealed, aad);
            let otherEnv;
            try {
              await seal.unseal(key, sealed, seal.aad.revision("work/api", "prod"));
            } catch (error) {
              otherEnv = error.name;
            }
            const text = new TextEncoder().encode("B=2\\n");
            return {
              opened: new TextDecoder().decode(opened),
              otherEnv,
              sealed: await seal.seal(key, text, seal.aad.envKey("work/api", "dev")),
            };
        }""",
        [crypto.b64encode(key), from_python],
    )
    assert result["opened"] == "A=1\n"
    assert result["otherEnv"] == "DecryptError"
    aad = crypto.aad_env_key("work/api", "dev")
    assert crypto.unseal(key, result["sealed"], aad) == b"B=2\n"


def test_a_code_works_once_and_a_bad_code_is_a_clear_message(page, web):
    code = web.login_code()
    page.fill("#login-code", code[:-4])
    page.press("#login-code", "Enter")
    expect(page.get_by_role("alert")).to_contain_text("damaged or incomplete")

    page.fill("#login-code", code)
    page.press("#login-code", "Enter")
    expect(page.locator("h1")).to_have_text("Apps")

    other = _open(page.context.browser, web.server.url)
    other.page.fill("#login-code", code)
    other.page.press("#login-code", "Enter")
    expect(other.page.get_by_role("alert")).to_contain_text("was used")
    other.page.context.close()


# -- editing -----------------------------------------------------------------------


def test_an_edit_in_the_page_is_what_the_cli_pulls_byte_for_byte(page, web):
    web.new_app("edited")
    login(page, web)
    open_env(page, "edited", tab="edit")

    page.get_by_label("Value of GREETING").fill("bonjour tout le monde")
    page.get_by_role("button", name="Remove PORT").click()
    page.get_by_role("button", name="Add a key").click()
    page.get_by_label("New key", exact=True).fill("API_KEY")
    page.get_by_label("Value of the new key").fill("k-123")
    screenshot(page, "04-edit")
    page.get_by_role("button", name="Save as a new revision").click()

    expect(page.get_by_role("status").first).to_contain_text("Saved revision 2.")
    assert web.pull("edited") == (
        b"# database\n"
        b"DATABASE_URL=postgres://app:s3cret@db:5432/app\n"
        b"GREETING='bonjour tout le monde' # shown on the home page\n"
        b"\n"
        b"EMPTY=\n"
        b"API_KEY=k-123\n"
    )
    history = web.laptop.run("history", "edited", "--json", check=0).json()
    assert history["revisions"][0]["device"] == "web admin"


def test_a_raw_edit_keeps_crlf_line_endings(page, web):
    web.new_app("crlf", "A=1\r\nB=2\r\n")
    login(page, web)
    open_env(page, "crlf", tab="edit")

    page.get_by_role("button", name="Raw text").click()
    page.fill("#raw-text", "A=1\nB=2\nC=3\n")
    page.get_by_role("button", name="Save as a new revision").click()

    expect(page.get_by_role("status").first).to_contain_text("Saved revision 2.")
    assert web.pull("crlf") == b"A=1\r\nB=2\r\nC=3\r\n"


def test_invalid_raw_text_is_refused_before_saving(page, web):
    web.new_app("invalid")
    login(page, web)
    open_env(page, "invalid", tab="edit")

    page.get_by_role("button", name="Raw text").click()
    page.fill("#raw-text", "OK=1\nnot an assignment\n")
    page.get_by_role("button", name="Save as a new revision").click()

    expect(page.get_by_role("alert")).to_contain_text("line 2")
    assert web.pull("invalid") == SAMPLE.encode()


def test_a_stale_base_save_is_refused_with_a_way_to_reload(page, web):
    web.new_app("stale")
    login(page, web)
    open_env(page, "stale", tab="edit")
    web.laptop.run("set", "stale", "PORT=9000", check=0)

    page.get_by_label("Value of GREETING").fill("from the page")
    page.get_by_role("button", name="Save as a new revision").click()
    conflict = page.get_by_role("alert")
    expect(conflict).to_contain_text("Not saved: this env moved on.")
    expect(conflict).to_contain_text("Revision 2 was saved after you opened revision 1")
    screenshot(page, "05-conflict")
    assert b"PORT=9000" in web.pull("stale")
    assert b"from the page" not in web.pull("stale")

    conflict.get_by_role("button", name="Reload the latest revision").click()
    expect(page.locator("p.meta")).to_contain_text("Editing revision 2.")
    page.get_by_label("Value of GREETING").fill("from the page")
    page.get_by_role("button", name="Save as a new revision").click()
    expect(page.get_by_role("status").first).to_contain_text("Saved revision 3.")
    pulled = web.pull("stale")
    assert b"PORT=9000" in pulled and b"from the page" in pulled


# -- history, diff, rollback -------------------------------------------------------


def test_history_diff_and_rollback(page, web):
    web.new_app("history")
    web.laptop.run("set", "history", "PORT=9000", "NEW=1", check=0)
    web.laptop.run("unset", "history", "EMPTY", check=0)
    login(page, web)

    open_env(page, "history", tab="history")
    rows = page.locator("table.history tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("laptop")
    screenshot(page, "06-history")

    open_env(page, "history", tab="diff/1/3")
    diff = page.locator("table.diff")
    expect(diff.locator("tr.added")).to_contain_text("NEW")
    expect(diff.locator("tr.removed")).to_contain_text("EMPTY")
    expect(diff.locator("tr.changed")).to_contain_text("PORT")
    expect(diff).not_to_contain_text("9000")
    diff.get_by_role("button", name="Reveal PORT").last.click()
    expect(diff.locator("tr.changed")).to_contain_text("9000")
    screenshot(page, "07-diff")

    open_env(page, "history", tab="history")
    rows.filter(has_text="r1").get_by_role("button", name="Roll back to r1").click()
    page.locator("form.confirm").get_by_role("button", name="Roll back to r1").click()
    expect(page.get_by_role("status").first).to_contain_text(
        "Rolled back: revision 4 copies r1."
    )
    assert web.pull("history") == SAMPLE.encode()


# -- envs --------------------------------------------------------------------------


def test_create_an_env_copying_another_then_delete_it(page, web):
    web.new_app("envs")
    login(page, web)
    page.evaluate("location.hash = '#/app/envs'")
    expect(page.locator("h1")).to_have_text("envs")

    page.fill("#new-env", "staging")
    page.select_option("#copy-from", "dev")
    page.get_by_role("button", name="Create env").click()
    expect(page.locator("h1")).to_have_text("envs · staging")
    assert web.pull("envs", env="staging") == SAMPLE.encode()
    listed = web.laptop.run("history", "envs", "--env", "staging", "--json", check=0)
    assert listed.json()["revisions"][0]["kind"] == "copy"

    page.evaluate("location.hash = '#/app/envs'")
    page.get_by_role("button", name="Delete env staging").click()
    page.get_by_role("button", name="Delete staging").click()
    expect(page.get_by_label("Type staging to confirm")).to_have_attribute(
        "aria-invalid", "true"
    )
    page.get_by_label("Type staging to confirm").fill("staging")
    screenshot(page, "08-app")
    page.get_by_role("button", name="Delete staging").click()
    expect(page.locator("table.envs")).not_to_contain_text("staging")
    envs = web.laptop.run("env", "list", "envs", "--json", check=0).json()["envs"]
    assert [env["name"] for env in envs] == ["dev"]


# -- devices, tokens, audit, logout ------------------------------------------------


def test_revoking_a_device_in_the_page_locks_it_out(page, web):
    web.new_app("devices")
    phone = web.device("phone")
    phone.run("pull", "devices", "--stdout", check=0)
    login(page, web)

    page.get_by_role("link", name="Devices", exact=True).click()
    expect(page.locator("h1")).to_have_text("Devices")
    screenshot(page, "09-devices")
    page.get_by_role("button", name="Revoke phone").click()
    page.locator("form.confirm").get_by_role("button", name="Revoke phone").click()
    row = page.locator("table.devices tr", has_text="phone")
    expect(row).to_contain_text("revoked")

    phone.run("lock", check=0)
    phone.run("pull", "devices", "--stdout", check=3)
    web.laptop.run("pull", "devices", "--stdout", check=0)


def test_tokens_are_listed_and_a_revoked_one_no_longer_enrolls(page, web):
    created = web.laptop.run("gen-token", "--name", "spare", "--json", check=0).json()
    login(page, web)

    page.get_by_role("link", name="Tokens", exact=True).click()
    row = page.locator("table.tokens tr", has_text=created["id"])
    expect(row).to_contain_text("active")
    screenshot(page, "10-tokens")
    row.get_by_role("button", name=f"Revoke {created['id']}").click()
    page.locator("form.confirm").get_by_role("button").first.click()
    expect(page.get_by_role("status").first).to_contain_text("Revoked enroll token")
    expect(row).to_be_hidden()
    page.get_by_label("Show used, expired and revoked tokens").check()
    expect(row).to_contain_text("revoked")

    joiner = Device(web.base / "joiner-home", web.base / "joiner-work", web.server)
    refused = joiner.run(
        "auth", "--server", web.server.url, "--enroll", created["token"]
    )
    assert refused.code != 0
    assert "revoked" in refused.stderr


def test_the_audit_log_filters_by_app(page, web):
    web.new_app("audited")
    web.new_app("other")
    login(page, web)

    page.get_by_role("link", name="Audit log").click()
    page.select_option("#audit-app", "audited")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("h1")).to_have_text("Audit log of audited")
    apps = page.locator("table.audit tbody td:nth-child(4)").all_inner_texts()
    assert apps and set(apps) == {"audited"}
    screenshot(page, "11-audit")


def test_logout_ends_the_session_and_a_reload_asks_for_a_new_code(page, web):
    login(page, web)
    cookie = next(c for c in page.context.cookies() if c["name"] == "dmage_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status").first).to_contain_text("Logged out")
    headers = {"Cookie": f"dmage_session={cookie['value']}"}
    status, _, _ = web.server.request("GET", "/api/v1/apps", headers=headers)
    assert status == 401

    login(page, web)
    page.reload()
    expect(page.locator("#login-code")).to_be_visible()
    expect(page.locator("main")).to_contain_text("this tab's memory only")


# -- keyboard, phone, plain HTTP ---------------------------------------------------


def test_the_keyboard_alone_logs_in_and_reveals_a_value(page, web):
    web.new_app("keys")
    page.keyboard.type(web.login_code())
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Apps")
    open_env(page, "keys")

    reveal = page.get_by_role("button", name="Reveal PORT")
    for _ in range(40):
        page.keyboard.press("Tab")
        if reveal.evaluate("button => button === document.activeElement"):
            break
    page.keyboard.press("Enter")
    expect(secret_row(page, "PORT").locator("code.value")).to_have_text("8000")


def test_the_page_fits_a_phone_screen(browser, web):
    web.new_app("phone/app")
    watched = _open(browser, web.server.url, viewport={"width": 375, "height": 740})
    phone = watched.page
    login(phone, web)
    open_env(phone, "phone/app")

    overflow = phone.evaluate("document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0
    screenshot(phone, "12-phone")
    phone.context.close()
    assert watched.errors == []


def test_plain_http_on_another_host_shows_metadata_but_never_decrypts(playwright, web):
    web.new_app("plain")
    mapped = f"--host-resolver-rules=MAP {PLAIN_HTTP_HOST} 127.0.0.1"
    origin = web.server.url.replace("127.0.0.1", PLAIN_HTTP_HOST)
    browser = launch(playwright, mapped)
    try:
        watched = _open(browser, origin)
        page = watched.page
        assert page.evaluate("isSecureContext") is False
        expect(page.locator("main")).to_contain_text(
            "decrypting needs HTTPS or localhost"
        )

        login(page, web)
        open_env(page, "plain")
        expect(page.locator("main")).to_contain_text("Values stay sealed here")
        expect(page.locator("main")).to_contain_text("Latest revision: r1")
        page.get_by_role("link", name="History", exact=True).click()
        expect(page.locator("table.history")).to_contain_text("laptop")
        screenshot(page, "13-plain-http")
    finally:
        browser.close()
    # Chromium says it ignores the COOP header on an untrustworthy origin: true,
    # and the very situation this test sets up.
    errors = [e for e in watched.errors if "Cross-Origin-Opener-Policy" not in e]
    assert errors == [] and watched.foreign == []
