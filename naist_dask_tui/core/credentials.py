"""TLS credentials for one cluster: a private CA and a certificate per role.

``Security.temporary()`` gives every party the same key and certificate, so the only file a
user's own script could use would be the workers' copy. Here the keeper makes a CA of its own
for each cluster (its key lives only in the keeper's memory while certificates are issued, then
is dropped) and issues three certificates signed by it: one for the scheduler, one for the
workers (written by dask-jobqueue into the TLS directory the jobs read), and one for clients
(the screen, your scripts and notebooks), written into the cluster's private directory.
Mutual TLS then refuses any peer whose certificate this CA did not sign.

EC P-256 keys: the handshakes cost less CPU than RSA-2048 (each worker connection does one).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from naist_dask_tui.core.paths import private_dir, write_private

CA_FILE = "ca.pem"
CERT_FILE = "client.pem"
KEY_FILE = "client.key"


@dataclass(frozen=True)
class Pem:
    cert: str
    key: str


@dataclass(frozen=True)
class ClusterCredentials:
    ca: str  # the CA's certificate (PEM); its key is not kept
    scheduler: Pem
    worker: Pem
    client: Pem

    def security(self):
        """The ``Security`` the keeper gives its scheduler (and, through dask-jobqueue, the
        workers: it writes the worker parts to files the jobs read)."""
        from distributed.security import Security

        return Security(
            require_encryption=True,
            tls_ca_file=self.ca,
            tls_scheduler_cert=self.scheduler.cert,
            tls_scheduler_key=self.scheduler.key,
            tls_worker_cert=self.worker.cert,
            tls_worker_key=self.worker.key,
            tls_client_cert=self.client.cert,
            tls_client_key=self.client.key,
        )

    def write_client_files(self, directory: Path) -> ClientFiles:
        """The client's credentials as files only the user can read (0600 in a 0700 dir)."""
        private_dir(directory)
        files = ClientFiles(directory / CA_FILE, directory / CERT_FILE, directory / KEY_FILE)
        write_private(files.ca, self.ca)
        write_private(files.cert, self.client.cert)
        write_private(files.key, self.client.key)
        return files


@dataclass(frozen=True)
class ClientFiles:
    ca: Path
    cert: Path
    key: Path

    @classmethod
    def in_dir(cls, directory: Path) -> ClientFiles:
        return cls(directory / CA_FILE, directory / CERT_FILE, directory / KEY_FILE)

    def exist(self) -> bool:
        return self.ca.is_file() and self.cert.is_file() and self.key.is_file()

    def security(self):
        from distributed.security import Security

        return Security(
            require_encryption=True,
            tls_ca_file=str(self.ca),
            tls_client_cert=str(self.cert),
            tls_client_key=str(self.key),
        )

    def dask_config(self) -> dict[str, object]:
        """dask config keys that make ``Security()`` (and so ``Client()``) use these files."""
        return {
            "distributed.comm.tls.ca-file": str(self.ca),
            "distributed.comm.tls.client.cert": str(self.cert),
            "distributed.comm.tls.client.key": str(self.key),
            "distributed.comm.require-encryption": True,
        }


def make_credentials(days: int = 365) -> ClusterCredentials:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "naist-dask-tui"),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )

    def key_pem(key) -> str:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("naist-dask-tui cluster CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def issue(role: str) -> Pem:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(f"dask-{role}"))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # Every party both listens and connects (workers talk to each other).
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("dask-internal")]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return Pem(cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem(key))

    return ClusterCredentials(
        ca=ca_cert.public_bytes(serialization.Encoding.PEM).decode(),
        scheduler=issue("scheduler"),
        worker=issue("worker"),
        client=issue("client"),
    )
