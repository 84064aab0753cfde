"""`trading-console certs`: a private CA, a server certificate and a client certificate.

Mutual TLS is the only way the control server listens on anything but loopback: the
engine proves who it is with the server certificate, the console with the client
certificate, and both are signed by a CA made here for this one purpose (never a public
one). Keys are written 0600; certificates 0644.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from engine.app.control_files import write_private

VALID_DAYS = 825  # the longest validity common clients accept for a leaf certificate


@dataclass(frozen=True)
class CertFiles:
    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca-key.pem"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server-key.pem"

    def client_cert(self, name: str = "client") -> Path:
        return self.folder / f"{name}.pem"

    def client_key(self, name: str = "client") -> Path:
        return self.folder / f"{name}-key.pem"


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trading-console"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])  # fmt: skip


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(path, 0o644)


def _load(files: CertFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def make_ca(files: CertFiles, days: int = 3650) -> None:
    files.folder.mkdir(parents=True, exist_ok=True)
    os.chmod(files.folder, 0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("trading-console CA"))
        .issuer_name(_name("trading-console CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    write_private(files.ca_key, _key_pem(key))
    _write_cert(files.ca_cert, cert)


def _leaf(files: CertFiles, common_name: str, server: bool, hosts: list[str]) -> tuple[str, x509.Certificate]:
    ca_cert, ca_key = _load(files)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if server:
        names: list[x509.GeneralName] = []
        for h in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                names.append(x509.DNSName(h))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return _key_pem(key), builder.sign(ca_key, hashes.SHA256())


def make_server_cert(files: CertFiles, hosts: list[str]) -> None:
    """For the engine host: every name and address the console will dial goes in `hosts`."""
    key, cert = _leaf(files, hosts[0] if hosts else "localhost", True, hosts or ["localhost"])
    write_private(files.server_key, key)
    _write_cert(files.server_cert, cert)


def make_client_cert(files: CertFiles, name: str = "client", operator: str = "operator") -> None:
    """For a console; the certificate's common name is the operator the engine audits."""
    key, cert = _leaf(files, operator, False, [])
    write_private(files.client_key(name), key)
    _write_cert(files.client_cert(name), cert)


def make_all(folder: Path, hosts: list[str], operator: str, client_name: str = "client") -> CertFiles:
    """A CA (kept if one exists), a server certificate for `hosts` and one client certificate."""
    files = CertFiles(folder)
    if not (files.ca_cert.exists() and files.ca_key.exists()):
        make_ca(files)
    make_server_cert(files, hosts)
    make_client_cert(files, client_name, operator)
    return files


# --- TLS contexts ---------------------------------------------------------------------------


def server_ssl_context(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    """Server side of mutual TLS: a client without a certificate signed by `ca` never gets in."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_ssl_context(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    """Client side: trust only our CA (not the system's), present our certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def run_certs_command(folder: Path, hosts: list[str], operator: str, client_name: str) -> int:
    files = make_all(folder, hosts, operator, client_name)
    print(f"CA:      {files.ca_cert}  (key {files.ca_key}, keep it off the server if you can)")
    print(f"server:  {files.server_cert}  key {files.server_key}  for {', '.join(hosts)}")
    print(f"client:  {files.client_cert(client_name)}  key {files.client_key(client_name)}  operator {operator}")
    print("copy ca.pem + the client pair to the desktop; the engine needs ca.pem + the server pair")
    return 0
