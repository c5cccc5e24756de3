"""Route 3: files OpenSSL opens itself, with no audit event.

``SSLContext.load_verify_locations(cafile, capath)`` and ``load_cert_chain(certfile, keyfile)``
hand their paths to OpenSSL, which opens them with its own ``fopen``: Python raises no ``open``
event. What they read comes back to the caller: ``get_ca_certs()`` lists every certificate the
file held, a private key loaded signs the handshakes of every connection the context makes, and
the error says whether the file exists and what it starts with. ``_ssl._test_decode_cert(path)``
returns a file's certificate decoded.

Each is decided as reading the file (``fs-readonly``); ``capath`` is the folder OpenSSL will look
certificates up in during later handshakes, so ``fs-readonly`` on the folder. A distribution's
own files stay free (certifi's ``cacert.pem`` for certifi). The methods are gated in place on the
type (immutable from Python: written through its dict), so ``ssl.SSLContext``, its subclasses and
``_ssl._SSLContext.load_verify_locations(ctx, ...)`` all reach the gate.

Not gated, on purpose: ``load_dh_params`` and ``keylog_filename`` open their file through
CPython's ``_Py_fopen_obj``, which raises the ``open`` event; ``set_default_verify_paths`` and
``load_default_certs`` read the system's trust store (public data, and what every TLS client
does).
"""

from __future__ import annotations

from ..capabilities import FS_READONLY

#: method -> [(position counting the context, keyword name)] of each path it hands to OpenSSL.
CONTEXT_FILES = {
    "load_verify_locations": [(1, "cafile"), (2, "capath")],
    "load_cert_chain": [(1, "certfile"), (2, "keyfile")],
}


def guard_module(guard, module, put) -> dict:
    """Called by :func:`capimport.guards.native.guard_module` for ``_ssl``."""
    from .native import _path_checker, _path_converter, guard_type_methods

    def gate(api: str, index: int, name: str) -> tuple:
        return (("path", {"api": api, "capability": FS_READONLY, "index": index, "names": (name,)}),
                lambda: _path_checker(guard, FS_READONLY, api, index, names=(name,)),
                _path_converter(index, (name,)))

    done: dict = {}
    put("_test_decode_cert", *gate("_ssl._test_decode_cert", 0, "path"))
    context = module.__dict__.get("_SSLContext")
    if isinstance(context, type):
        done.update(guard_type_methods(guard, context, {
            method: [gate(f"ssl.SSLContext.{method}", index, name) for index, name in paths]
            for method, paths in CONTEXT_FILES.items()}))
    return done
