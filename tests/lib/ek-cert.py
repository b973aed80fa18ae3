# SPDX-License-Identifier: Apache-2.0
# ek-cert.py EK_PEM CA_OUT CERT_OUT CA_NAME NOT_BEFORE_YEAR NOT_AFTER_YEAR: a manufacturer CA made
# with python's cryptography (not our code), written to CA_OUT (PEM), and an EK certificate it
# issues for the EK public key in EK_PEM (DER, to CERT_OUT) in the TCG EK profile's shape: no
# subject, keyEncipherment, the EK certificate EKU, the TPM manufacturer/model/version in a
# critical subjectAltName, valid from NOT_BEFORE_YEAR to NOT_AFTER_YEAR (the CA until 2099).
import sys, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ek_pem, ca_out, cert_out, ca_name, nb_year, na_year = sys.argv[1:7]
ek = serialization.load_pem_public_key(open(ek_pem, "rb").read())
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
t0 = datetime.datetime(int(nb_year), 1, 1)
ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
      .serial_number(1).not_valid_before(t0).not_valid_after(datetime.datetime(2099, 1, 1))
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
      .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
      .sign(key, hashes.SHA256()))
open(ca_out, "wb").write(ca.public_bytes(serialization.Encoding.PEM))
cert = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(name).public_key(ek)
        .serial_number(2).not_valid_before(t0).not_valid_after(datetime.datetime(int(na_year), 1, 1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, True, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ObjectIdentifier("2.23.133.8.1")]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DirectoryName(x509.Name([
            x509.NameAttribute(ObjectIdentifier("2.23.133.2.1"), "id:49424D00"),
            x509.NameAttribute(ObjectIdentifier("2.23.133.2.2"), "SW   TPM"),
            x509.NameAttribute(ObjectIdentifier("2.23.133.2.3"), "id:20191023")]))]), critical=True)
        .sign(key, hashes.SHA256()))
open(cert_out, "wb").write(cert.public_bytes(serialization.Encoding.DER))
