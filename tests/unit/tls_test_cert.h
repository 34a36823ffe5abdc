// SPDX-License-Identifier: BSD-3-Clause
// Test certificates made with OpenSSL's API: a CA and a server certificate
// for localhost/127.0.0.1 it signs, written as PEM files in a temporary
// directory. For the TLS unit tests only.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace tlstest {

inline EVP_PKEY* newKey() {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    if (!key) throw std::runtime_error("EVP_EC_gen failed");
    return key;
}

inline void addExt(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext) throw std::runtime_error("X509V3_EXT_conf_nid failed");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

// A certificate for `cn` valid from now+notBeforeDays to now+notAfterDays,
// signed by issuer/issuerKey (self-signed when issuer is null).
inline X509* makeCert(const char* cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuerKey, long serial, bool ca,
                      long notBeforeDays = -1, long notAfterDays = 90) {
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert), notBeforeDays * 86400);
    X509_gmtime_adj(X509_getm_notAfter(cert), notAfterDays * 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1,
                               0);
    X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
    X509* signer = issuer ? issuer : cert;
    if (ca) {
        addExt(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
        addExt(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        addExt(cert, signer, NID_basic_constraints, "critical,CA:FALSE");
        addExt(cert, signer, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
        addExt(cert, signer, NID_ext_key_usage, "serverAuth");
    }
    addExt(cert, signer, NID_subject_key_identifier, "hash");
    X509_sign(cert, issuerKey ? issuerKey : key, EVP_sha256());
    return cert;
}

inline void writePem(const std::string& path, X509* a, X509* b = nullptr, EVP_PKEY* key = nullptr) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) throw std::runtime_error("cannot write " + path);
    if (a) PEM_write_X509(f, a);
    if (b) PEM_write_X509(f, b);
    if (key) PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
}

// A temporary directory with ca.pem, fullchain.pem (server + CA), privkey.pem
// (0600), combined.pem (chain + key), other-key.pem (a key of nothing here)
// and expired.pem (an expired certificate for the same key).
struct Files {
    std::string dir, ca, fullchain, key, combined, otherKey, expired;
    Files() {
        char tmpl[] = "/tmp/hubd-tls-test-XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        dir = tmpl;
        ca = dir + "/ca.pem";
        fullchain = dir + "/fullchain.pem";
        key = dir + "/privkey.pem";
        combined = dir + "/combined.pem";
        otherKey = dir + "/other-key.pem";
        expired = dir + "/expired.pem";
        EVP_PKEY* caKey = newKey();
        X509* caCert = makeCert("hubd test CA", caKey, nullptr, nullptr, 1, true, -1, 3650);
        EVP_PKEY* serverKey = newKey();
        X509* server = makeCert("localhost", serverKey, caCert, caKey, 2, false);
        X509* old = makeCert("localhost", serverKey, caCert, caKey, 3, false, -100, -10);
        EVP_PKEY* other = newKey();
        writePem(ca, caCert);
        writePem(fullchain, server, caCert);
        writePem(key, nullptr, nullptr, serverKey);
        writePem(combined, server, caCert, serverKey);
        writePem(otherKey, nullptr, nullptr, other);
        writePem(expired, old, caCert);
        for (const auto& p : {key, combined, otherKey}) ::chmod(p.c_str(), 0600);
        X509_free(caCert);
        X509_free(server);
        X509_free(old);
        EVP_PKEY_free(caKey);
        EVP_PKEY_free(serverKey);
        EVP_PKEY_free(other);
    }
    ~Files() {
        std::string command = "rm -rf '" + dir + "'";
        if (std::system(command.c_str()) != 0) std::fputs("could not remove test certificates\n", stderr);
    }
    Files(const Files&) = delete;
    Files& operator=(const Files&) = delete;
};

}  // namespace tlstest
