"""Route 3: files OpenSSL opens itself, with no audit event.

``SSLContext.load_verify_locations`` and ``load_cert_chain`` hand their paths to OpenSSL, which
opens them with its own ``fopen``: no ``open`` event. What was read comes back: ``get_ca_certs()``
lists the certificates, a loaded private key signs every handshake the context makes, the errors
say whether a file exists. ``_ssl._test_decode_cert(path)`` returns a certificate file decoded.
Each is decided as reading the file (``fs-readonly``; ``capath``: the folder), gated in place on
the type, so subclasses and the C base type reach the gate too (``capimport/guards/tls.py``).

Every attack runs without capimport first (it must work), then under it in both decisions.
"""

from __future__ import annotations

import pytest
from sechelp import ATTEMPT, Scenario, denied, ok, results

pytest.importorskip("ssl")

DECISIONS = pytest.mark.parametrize("decision", [{}, {"CAPIMPORT_PURE_PYTHON": "1"}], ids=["native", "pure"])

#: A self-signed test certificate and its key (made for these tests, valid to 2126).
CERT = """-----BEGIN CERTIFICATE-----
MIIBkjCCATmgAwIBAgIUFTnUvJ0mLioy5wZou1gPHwaSnzswCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTY2FwaW1wb3J0LXNlY3JldC1jYTAgFw0yNjExMjIwMTA5MDVa
GA8yMTI2MTAyOTAxMDkwNVowHjEcMBoGA1UEAwwTY2FwaW1wb3J0LXNlY3JldC1j
YTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABFFew/bpNzAqz+bIXOnMeoe/k7fE
zrcUsP5artGW76XbuHHz4rRwsRuVyKbZKTTF7ufk7JeYifbCmw9rW8TzGM2jUzBR
MB0GA1UdDgQWBBS27eK2Qhu39x0weq+dm6SUxjKKkDAfBgNVHSMEGDAWgBS27eK2
Qhu39x0weq+dm6SUxjKKkDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cA
MEQCIAfBCtniBF+QVLIu7t3XgnEIPN/SCuhKvNws93kEf38tAiB8FIZM+ctZRyEQ
P47XrcH3PRZvXS7+Y7v5UKsWeLY4WA==
-----END CERTIFICATE-----
"""
KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgbJxo+D9O96XIiosv
mdCXe7djiJa/uunRtMY/G7TiSvGhRANCAARRXsP26TcwKs/myFzpzHqHv5O3xM63
FLD+Wq7Rlu+l27hx8+K0cLEblcim2Sk0xe7n5OyXmIn2wpsPa1vE8xjN
-----END PRIVATE KEY-----
"""
SUBJECT = "((('commonName', 'capimport-secret-ca'),),)"

#: The application's secrets: a CA file, a folder of certificates and a client key.
APP = '''
import os, ssl
SECRETS = {secrets!r}
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(os.path.join(SECRETS, "ca.pem"))   # the application itself: free
assert len(ctx.get_ca_certs()) == 1
import evil
evil.run(SECRETS)
'''

ATTACK = ATTEMPT + '''
import os, pathlib, ssl, _ssl
OWN_CERT = os.path.join(os.path.dirname(__file__), "cert.pem")
def run(secrets):
    cert, key = os.path.join(secrets, "ca.pem"), os.path.join(secrets, "client.key")
    def cafile():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=cert)
        return ctx.get_ca_certs()[0]["subject"]
    attempt("cafile", cafile)
    attempt("capath", ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations, None, secrets)
    attempt("cert_chain", ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain, cert, key)
    attempt("key_only", ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain, OWN_CERT, key)
    attempt("base_type", lambda: _ssl._SSLContext.load_verify_locations(
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), cert))
    attempt("path_like", ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations, pathlib.Path(cert))
    class Mine(ssl.SSLContext):
        pass
    attempt("subclass", Mine(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations, cert)
    attempt("decode", lambda: _ssl._test_decode_cert(cert)["subject"])
    attempt("exists", ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations,
            os.path.join(secrets, "missing.pem"))
    report()
'''


def _secrets(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ca.pem").write_text(CERT)
    (secrets / "client.key").write_text(KEY)
    return secrets


@DECISIONS
def test_openssl_reads_no_file_for_a_distribution_without_fs_readonly(tmp_path, decision):
    secrets = _secrets(tmp_path)
    config = '[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\nevil = []\n'
    scenario = Scenario(tmp_path, config=config, app=APP.format(secrets=str(secrets)),
                        dists={"evil": {"files": {"evil/__init__.py": ATTACK, "evil/cert.pem": CERT}}})
    plain = scenario.plain()
    before = results(plain)
    assert before["cafile"] == before["decode"] == "ok:" + SUBJECT, (before, plain.stderr[-2000:])
    for name in ("capath", "cert_chain", "key_only", "base_type", "path_like", "subclass"):
        assert before[name] == "ok:None", (name, before)
    assert before["exists"].startswith("denied:FileNotFoundError"), before

    guarded = scenario.guarded(extra_env=decision)
    after = results(guarded)
    for name, outcome in after.items():
        assert denied(outcome) and "lacks 'fs-readonly'" in outcome, (name, after, guarded.stderr[-2000:])
    assert "ssl.SSLContext.load_verify_locations" in guarded.stderr, guarded.stderr[-2000:]
    assert "ssl.SSLContext.load_cert_chain" in guarded.stderr and "_ssl._test_decode_cert" in guarded.stderr


@DECISIONS
def test_tls_clients_load_their_own_and_granted_files(tmp_path, decision):
    """No false denial: a distribution granted nothing makes default contexts and loads the CA
    bundle and key it ships (as certifi's users do: the file is certifi's own), or a
    certificate given as text; one granted ``fs-readonly`` loads the application's files."""
    secrets = _secrets(tmp_path)
    client = ATTEMPT + '''
import os, ssl
HERE = os.path.dirname(__file__)
def run(secrets):
    attempt("default", lambda: ssl.create_default_context().verify_mode == ssl.CERT_REQUIRED)
    attempt("own_bundle", lambda: len(ssl.create_default_context(
        cafile=os.path.join(HERE, "cacert.pem")).get_ca_certs()))
    attempt("own_chain", ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain,
            os.path.join(HERE, "cacert.pem"), os.path.join(HERE, "key.pem"))
    attempt("cadata", ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations, None, None, CERT)
    report()
'''.replace("CERT)", repr(CERT) + ")")
    reader = ATTEMPT + '''
import os, ssl
def run(secrets):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    attempt("granted", ctx.load_cert_chain, os.path.join(secrets, "ca.pem"), os.path.join(secrets, "client.key"))
    report()
'''
    config = ('[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\n'
              'client = []\nreader = ["fs-readonly"]\n')
    app = f"import client, reader\nclient.run({str(secrets)!r})\nreader.run({str(secrets)!r})\n"
    scenario = Scenario(tmp_path, config=config, app=app, dists={
        "client": {"files": {"client/__init__.py": client, "client/cacert.pem": CERT, "client/key.pem": KEY}},
        "reader": {"files": {"reader/__init__.py": reader}}})
    guarded = scenario.guarded(extra_env=decision)
    lines = [line for line in guarded.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2, (guarded.stdout, guarded.stderr[-2000:])
    import json
    assert json.loads(lines[0]) == {"default": "ok:True", "own_bundle": "ok:1", "own_chain": "ok:None",
                                    "cadata": "ok:None"}, guarded.stderr[-2000:]
    assert json.loads(lines[1]) == {"granted": "ok:None"}, guarded.stderr[-2000:]
    assert "lacks" not in guarded.stderr, guarded.stderr[-2000:]
