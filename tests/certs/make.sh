#!/bin/sh
# Regenerates the test certificates of tests/test_tls.py (committed; run by
# hand only to change them).  A private CA signs every leaf; ECDSA P-256
# keys keep 1,000 handshakes cheap.  Validity: 100 years, except expired.pem.
#   ca.pem          the CA certificate (trust anchor for clients)
#   server.pem      key + cert for localhost, 127.0.0.1 and ::1
#   other.pem       key + cert for other.test (SNI: a second server name)
#   wronghost.pem   key + cert for wrong.test only (hostname mismatch)
#   expired.pem     key + cert for localhost, valid 2020-01-01..2020-01-02
#   client.pem      key + cert of a client (client-certificate tests)
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$1" 2>/dev/null; }

key "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -days 36500 -subj "/CN=eloop test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem

mkdir "$tmp/db"
: > "$tmp/db/index.txt"
echo 1000 > "$tmp/db/serial"
cat > "$tmp/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
dir = $tmp/db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $PWD/ca.pem
private_key = $tmp/ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = copy
[any]
commonName = supplied
CNF

leaf() { # name cn san [ca options...]
    name=$1 cn=$2 san=$3
    shift 3
    key "$tmp/$name.key"
    openssl req -new -key "$tmp/$name.key" -subj "/CN=$cn" \
        -addext "subjectAltName=$san" -out "$tmp/$name.csr"
    openssl ca -batch -notext -config "$tmp/ca.cnf" -in "$tmp/$name.csr" \
        -out "$tmp/$name.crt" "$@" 2>/dev/null
    cat "$tmp/$name.key" "$tmp/$name.crt" > "$name.pem"
}
leaf server localhost "DNS:localhost,IP:127.0.0.1,IP:::1" -days 36500
leaf other other.test "DNS:other.test" -days 36500
leaf wronghost wrong.test "DNS:wrong.test" -days 36500
leaf client client "DNS:client" -days 36500
leaf expired localhost "DNS:localhost,IP:127.0.0.1" \
    -startdate 20200101000000Z -enddate 20200102000000Z
