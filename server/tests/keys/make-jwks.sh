#!/bin/sh
# Rebuilds jwks.json from the *.pub.pem files in this folder (needs openssl, xxd, basenc).
# The kids are fixed names the tests refer to.
set -eu
cd "$(dirname "$0")"
b64url() { basenc --base64url -w0 | tr -d '='; }
rsa_jwk() { # $1 = public key file, $2 = kid
  n=$(openssl rsa -pubin -in "$1" -noout -modulus | cut -d= -f2 | xxd -r -p | b64url)
  printf '{"kty":"RSA","use":"sig","kid":"%s","n":"%s","e":"AQAB"}' "$2" "$n"
}
ec_jwk() { # $1 = public key file, $2 = kid, $3 = crv, $4 = coordinate bytes
  point=$(mktemp)
  # The DER SubjectPublicKeyInfo ends with the uncompressed point 04 || x || y.
  openssl pkey -pubin -in "$1" -outform DER | tail -c $((2 * $4)) >"$point"
  x=$(head -c "$4" "$point" | b64url)
  y=$(tail -c "$4" "$point" | b64url)
  rm -f "$point"
  printf '{"kty":"EC","use":"sig","kid":"%s","crv":"%s","x":"%s","y":"%s"}' "$2" "$3" "$x" "$y"
}
{
  printf '{"keys":[\n  '
  rsa_jwk rsa.pub.pem rsa-1
  printf ',\n  '
  rsa_jwk rsa2.pub.pem rsa-2
  printf ',\n  '
  ec_jwk ec256.pub.pem ec-256 P-256 32
  printf ',\n  '
  ec_jwk ec384.pub.pem ec-384 P-384 48
  printf '\n]}\n'
} >jwks.json
